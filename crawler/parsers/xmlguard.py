"""Defuse XML before any parser sees it: expand small internal entities ourselves, refuse bombs and external ones."""

from __future__ import annotations

import codecs
import re

# An 80 KB feed must not grow past a few MB; real feeds declare a handful of short entities.
MAX_EXPANSION_BYTES = 4 * 1024 * 1024
MAX_ENTITY_DEPTH = 8
# Only the prolog may hold a DOCTYPE; stop looking after this many bytes.
PROLOG_WINDOW = 64 * 1024

_DOCTYPE = re.compile(rb"<!DOCTYPE\s+[^\s\[>]+", re.I)
_ENTITY_DECL = re.compile(
    rb"""<!ENTITY\s+(%\s+)?([A-Za-z_:][\w.:-]*)\s+(?:(SYSTEM|PUBLIC)\b[^>]*|"([^"]*)"|'([^']*)')\s*>""",
    re.S,
)
_ENTITY_REF = re.compile(rb"&([A-Za-z_:][\w.:-]*);")
_PREDEFINED = {b"lt", b"gt", b"amp", b"quot", b"apos"}
_XINCLUDE = re.compile(rb"<(?:[\w.-]+:)?include\b[^>]*\bhref\s*=", re.I)
_XINCLUDE_NS = b"http://www.w3.org/2001/XInclude"
_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_WIDE_PATTERNS = (
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00?\x00", "utf-16-le"),
    (b"\x00<\x00?", "utf-16-be"),
)
_DECL_ENCODING = re.compile(rb"""(<\?xml[^>]*?encoding\s*=\s*["'])[A-Za-z0-9._-]+(["'])""")


class XmlRejected(ValueError):
    """The document tries something we never allow (an entity bomb, an external entity)."""


def defuse_xml(body: bytes) -> bytes:
    """Return bytes that are safe for any XML parser, or raise XmlRejected.

    Internal entities declared in the DOCTYPE are expanded here, within a byte budget,
    and the DOCTYPE's internal subset is removed, so no parser ever expands anything.
    External entities and parameter entities are refused outright.
    """
    wide = _wide_encoding(body)
    if wide is not None:
        # Entity tricks hide in UTF-16/32 too: look at the text, and hand on UTF-8.
        probe = body[: PROLOG_WINDOW * 4].decode(wide, errors="ignore").encode("utf-8")
        if b"<!doctype" not in probe.lower() and _XINCLUDE_NS not in probe:
            return body
        text = body.decode(wide, errors="replace").lstrip("\ufeff").encode("utf-8")
        text = _DECL_ENCODING.sub(rb"\1utf-8\2", text, count=1)
        return _defuse_ascii_compatible(text)
    return _defuse_ascii_compatible(body)


def _wide_encoding(body: bytes) -> str | None:
    for bom, name in _WIDE_BOMS:
        if body.startswith(bom):
            return name
    for pattern, name in _WIDE_PATTERNS:
        if body.startswith(pattern):
            return name
    return None


def _defuse_ascii_compatible(body: bytes) -> bytes:
    if _XINCLUDE_NS in body and _XINCLUDE.search(body):
        raise XmlRejected("XInclude is not allowed in feeds")
    match = _DOCTYPE.search(body, 0, PROLOG_WINDOW)
    if match is None:
        return body
    start = match.start()
    end, subset = _doctype_end(body, match.end())
    if subset is None:
        # A DOCTYPE naming only an external DTD: parsers here never fetch it; drop it anyway.
        return body[:start] + body[end:]
    entities = _declared_entities(subset)
    rest = body[end:]
    if not entities:
        return body[:start] + rest
    expanded = _expand_all(entities)
    total = len(rest)
    for ref in _ENTITY_REF.finditer(rest):
        value = expanded.get(ref.group(1))
        if value is not None:
            total += len(value)
            if total > MAX_EXPANSION_BYTES:
                raise XmlRejected("entity expansion too large (an XML entity bomb?)")
    out = _ENTITY_REF.sub(lambda m: expanded.get(m.group(1), m.group(0)), rest)
    return body[:start] + out


def _doctype_end(body: bytes, pos: int) -> tuple[int, bytes | None]:
    """Find the end of the DOCTYPE declaration and its internal subset, quote-aware."""
    quote = 0
    subset_start = -1
    i = pos
    n = len(body)
    while i < n:
        c = body[i]
        if quote:
            if c == quote:
                quote = 0
        elif c in (0x22, 0x27):
            quote = c
        elif c == 0x5B and subset_start < 0:  # [
            subset_start = i + 1
        elif c == 0x5D and subset_start >= 0:  # ]
            j = body.find(b">", i)
            if j < 0:
                raise XmlRejected("unterminated DOCTYPE")
            return j + 1, body[subset_start:i]
        elif c == 0x3E and subset_start < 0:  # >
            return i + 1, None
        i += 1
    raise XmlRejected("unterminated DOCTYPE")


def _declared_entities(subset: bytes) -> dict[bytes, bytes]:
    entities: dict[bytes, bytes] = {}
    for decl in _ENTITY_DECL.finditer(subset):
        parameter, name, external = decl.group(1), decl.group(2), decl.group(3)
        if parameter:
            raise XmlRejected("parameter entities are not allowed in feeds")
        if external:
            raise XmlRejected(f"external entity {name.decode('ascii', 'replace')!r} is not allowed")
        value = decl.group(4) if decl.group(4) is not None else decl.group(5) or b""
        entities.setdefault(name, value)  # XML: the first declaration wins
    if b"<!ENTITY" in subset and not entities and re.search(rb"<!ENTITY\s+%", subset):
        raise XmlRejected("parameter entities are not allowed in feeds")
    return entities


def _expand_all(entities: dict[bytes, bytes]) -> dict[bytes, bytes]:
    done: dict[bytes, bytes] = {}

    def expand(name: bytes, depth: int, stack: tuple[bytes, ...]) -> bytes:
        if name in done:
            return done[name]
        if depth > MAX_ENTITY_DEPTH or name in stack:
            raise XmlRejected("entity nesting too deep or recursive (an XML entity bomb?)")
        size = 0

        def repl(m: re.Match[bytes]) -> bytes:
            nonlocal size
            ref = m.group(1)
            if ref in _PREDEFINED or ref not in entities:
                return m.group(0)
            value = expand(ref, depth + 1, stack + (name,))
            size += len(value)
            if size > MAX_EXPANSION_BYTES:
                raise XmlRejected("entity expansion too large (an XML entity bomb?)")
            return value

        value = _ENTITY_REF.sub(repl, entities[name])
        done[name] = value
        return value

    return {name: expand(name, 0, ()) for name in entities}
