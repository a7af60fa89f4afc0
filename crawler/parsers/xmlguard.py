"""Defuse XML before any parser sees it: expand small internal entities ourselves, refuse bombs and external ones."""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from itertools import islice

# An 80 KB feed must not grow past a few MB; real feeds declare a handful of short entities.
MAX_EXPANSION_BYTES = 4 * 1024 * 1024
MAX_ENTITY_DEPTH = 8
# feedparser spends 40-100 µs of CPU per element and about 5 µs per attribute, in the crawl's
# one thread: these caps hold the worst feed to about 10 s. The largest real feed we know of
# has 20,000 elements (a 1.6 MB podcast feed).
MAX_ELEMENTS = 100_000
MAX_ATTRIBUTES = 200_000
# Each character or entity reference is a callback too (about 4 µs in feedparser's strict parser).
MAX_REFERENCES = 1_000_000
# Comments and processing instructions before the root element; real feeds have a few.
MAX_PROLOG_ITEMS = 10_000

_DOCTYPE = re.compile(rb"<!DOCTYPE\s+[^\s\[>]+", re.I)
_ENTITY_ANYWHERE = re.compile(rb"<!ENTITY", re.I)
_ENTITY_DECL = re.compile(
    rb"""<!ENTITY\s+(%\s+)?([A-Za-z_:][\w.:-]*)\s+(?:(SYSTEM|PUBLIC)\b[^>]*|"([^"]*)"|'([^']*)')\s*>""",
    re.S,
)
_ENTITY_REF = re.compile(rb"&([A-Za-z_:][\w.:-]*);")
_PREDEFINED = {b"lt", b"gt", b"amp", b"quot", b"apos"}
_XINCLUDE = re.compile(rb"<(?:[\w.-]+:)?include\b[^>]*\bhref\s*=", re.I)
_XINCLUDE_NS = b"http://www.w3.org/2001/XInclude"
# feedparser takes everything before the first `<` + word character as the prolog, comments or not.
_FEEDPARSER_ROOT = re.compile(rb"<\w")
_START_TAG = re.compile(rb"<[A-Za-z_:\x80-\xff]")
_ATTRIBUTE = re.compile(rb"""\s[^\s<>=/]+\s*=\s*["']""")
_CDATA_START = b"<![CDATA["
# Numeric references that MAY name a character XML forbids (controls, surrogates, U+FFFE/F, past
# U+10FFFF); a superset, checked exactly in _fix_char_refs, so the usual &#8217; costs nothing.
_SUSPECT_CHAR_REF = re.compile(
    rb"&#(?:x0*([0-9A-Fa-f]|1[0-9A-Fa-f]|[dD][89A-Fa-f][0-9A-Fa-f]{2}|[fF]{3}[eEfF]|[0-9A-Fa-f]{6,})"
    rb"|0*([0-9]|[12][0-9]|3[01]|5[5-7][0-9]{3}|6553[45]|[0-9]{7,}));"
)
_REPLACEMENT_REF = b"&#xFFFD;"
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
    External entities and parameter entities are refused outright, and so is a document
    with more elements than a parser can get through in a few seconds.

    The bytes must be in the encoding the parser will read them in: feed.parse_feed hands
    over the UTF-8 that feedparser itself would decode, whatever charset the server claimed.
    """
    wide = _wide_encoding(body)
    if wide is not None:
        # Entity tricks hide in UTF-16/32 too: look at the text, and hand on UTF-8.
        text = body.decode(wide, errors="replace").lstrip("\ufeff").encode("utf-8")
        if b"<!doctype" not in text.lower() and _XINCLUDE_NS not in text:
            _check_markup(text)
            return body
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
    out = _fix_char_refs(_strip_doctype(body))
    head_end = _head_end(out)
    if _ENTITY_ANYWHERE.search(out, 0, head_end):
        # Declarations hidden where expat ignores them (a comment, a second DOCTYPE) but
        # feedparser's own regular expressions still find them and hand them to its loose parser.
        raise XmlRejected("ENTITY declaration outside the document's DOCTYPE")
    _check_markup(out)
    return out


def _strip_doctype(body: bytes) -> bytes:
    start = _find_doctype(body)
    if start is None:
        return body
    match = _DOCTYPE.match(body, start)
    if match is None:
        raise XmlRejected("malformed DOCTYPE")
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


def _fix_char_refs(body: bytes) -> bytes:
    """Replace character references to what XML forbids (NUL, surrogates, past U+10FFFF) with U+FFFD.

    expat refuses them, and feedparser's fallback parser then crashes on them (chr() of a
    surrogate cannot be encoded, chr() past 0x10FFFF raises).
    """
    # The pattern starts with "&#" and finds it faster than `in` does among the many "&lt;" of escaped HTML.
    if _SUSPECT_CHAR_REF.search(body) is None:
        return body
    bad = False

    def repl(m: re.Match[bytes]) -> bytes:
        nonlocal bad
        digits = m.group(1) or m.group(2)
        if len(digits) <= 8:
            code = int(digits, 16) if m.group(1) else int(digits)
            if code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or 0x10000 <= code <= 0x10FFFF:
                return m.group(0)
        bad = True
        return _REPLACEMENT_REF

    out = _SUSPECT_CHAR_REF.sub(repl, body)
    return out if bad else body


def _find_doctype(body: bytes) -> int | None:
    """Where the prolog's DOCTYPE starts, walking past the XML declaration, PIs and comments of any length."""
    pos = 0
    n = len(body)
    for _ in range(MAX_PROLOG_ITEMS):
        if pos >= n:
            return None
        lt = body.find(b"<", pos)
        if lt < 0:
            return None
        if body.startswith(b"<?", lt):
            close = body.find(b"?>", lt + 2)
            pos = n if close < 0 else close + 2
        elif body.startswith(b"<!--", lt):
            close = body.find(b"-->", lt + 4)
            pos = n if close < 0 else close + 3
        elif body[lt + 1 : lt + 9].upper() == b"!DOCTYPE":
            return lt
        elif body.startswith(b"<!", lt):
            pos = lt + 2  # a stray declaration; _ENTITY_ANYWHERE judges what is left
        else:
            return None  # the root element: no DOCTYPE can follow
    raise XmlRejected(f"more than {MAX_PROLOG_ITEMS:,} comments and instructions before the root element")


def _head_end(body: bytes) -> int:
    """The end of what any parser may read as the prolog: up to the real root, and up to feedparser's guess."""
    naive = _FEEDPARSER_ROOT.search(body)
    real = _START_TAG.search(body)
    ends = [m.start() + 2 for m in (naive, real) if m is not None]
    return max(ends) if ends else len(body)


def _check_markup(body: bytes) -> None:
    """Refuse documents with more elements, attributes or references (outside CDATA) than a parser gets through quickly."""
    # Every element starts with "<", every attribute has its "=": under the caps, whatever is in CDATA.
    # No count can exceed the length, so a body shorter than a cap needs no count for it.
    size = len(body)
    if (
        (size <= MAX_ELEMENTS or body.count(b"<") <= MAX_ELEMENTS)
        and (size <= MAX_ATTRIBUTES or body.count(b"=") <= MAX_ATTRIBUTES)
        and (size <= MAX_REFERENCES or body.count(b"&") <= MAX_REFERENCES)
    ):
        return
    elements = attributes = references = 0
    for start, stop in _outside_cdata(body):
        # islice: counting stops just past the cap, so a huge document costs no more than a full one.
        elements += sum(1 for _ in islice(_START_TAG.finditer(body, start, stop), MAX_ELEMENTS + 1 - elements))
        if elements > MAX_ELEMENTS:
            raise XmlRejected(f"more than {MAX_ELEMENTS:,} XML elements: too costly to parse")
        attributes += sum(1 for _ in islice(_ATTRIBUTE.finditer(body, start, stop), MAX_ATTRIBUTES + 1 - attributes))
        if attributes > MAX_ATTRIBUTES:
            raise XmlRejected(f"more than {MAX_ATTRIBUTES:,} XML attributes: too costly to parse")
        references += body.count(b"&", start, stop)
        if references > MAX_REFERENCES:
            raise XmlRejected(f"more than {MAX_REFERENCES:,} character or entity references: too costly to parse")


def _outside_cdata(body: bytes) -> Iterator[tuple[int, int]]:
    pos = 0
    while True:
        cdata = body.find(_CDATA_START, pos)
        if cdata < 0:
            yield pos, len(body)
            return
        yield pos, cdata
        close = body.find(b"]]>", cdata + len(_CDATA_START))
        if close < 0:
            return
        pos = close + 3


def _doctype_end(body: bytes, pos: int) -> tuple[int, bytes | None]:
    """Find the end of the DOCTYPE declaration and its internal subset, quote- and comment-aware."""
    quote = 0
    subset_start = -1
    i = pos
    n = len(body)
    while i < n:
        c = body[i]
        if quote:
            if c == quote:
                quote = 0
        elif subset_start >= 0 and body.startswith(b"<!--", i):
            close = body.find(b"-->", i + 4)
            if close < 0:
                break
            i = close + 3
            continue
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
    if re.search(rb"<!ENTITY\s+%", subset):
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
