"""feedparser's `Expect:` comments, translated: each `and`-conjunct is one check, on our normalized fields where we keep the field.

A conjunct whose subject is a field we keep (feed title, entry count, entry title, link,
guid, author, dates, categories, content, cover, language, the text an `encoding`
implies) is evaluated against OUR output with the comparison rules of compare.py.
Any other conjunct (`bozo`, `*_detail` types, generator, namespaces, links lists, ...)
is a "passthrough" check: evaluated as-is against feedparser.parse() run the way
upstream runs it. They are feedparser's tests, counted apart from ours.
"""

from __future__ import annotations

import ast
import codecs
import datetime
import html
import io
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import feedparser

from tests.conformance import compare as C
from tests.conformance.model import FETCHED_AT, OURS, PASSTHROUGH, Check, FileCtx, Ours

UPSTREAM_HOST = "http://127.0.0.1:8097/"
_FIELD_RE = re.compile(rb"(Description|Expect|Header|SkipUnless):[ \t]*(.*?)\s*(?=\n\s*(?:Description|Expect|Header|SkipUnless):|-->|\"\s*,|$)", re.S)
_WIDE = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"), (b"<\x00\x00\x00", "utf-32-le"), (b"\x00\x00\x00<", "utf-32-be"),
         (b"<\x00", "utf-16-le"), (b"\x00<", "utf-16-be"))  # fmt: skip
@dataclass(frozen=True)
class Spec:
    """What one feedparser test file says about itself."""

    description: str
    expect: str
    headers: dict[str, str]
    url: str  # where upstream serves it (or, for local files, the base we give our parser)
    served: bool  # True when upstream fetches it over HTTP (original path contains "http")


def read_spec(ctx: FileCtx) -> Spec | None:
    text = _comment_bytes(ctx.body)
    fields: dict[str, list[str]] = {}
    for m in _FIELD_RE.finditer(text):
        fields.setdefault(m.group(1).decode(), []).append(m.group(2).decode("utf-8", "replace").strip())
    if not fields.get("Expect"):
        return None
    original = original_path(ctx.root, ctx.relpath) or ctx.relpath
    served = "http" in original
    headers: dict[str, str] = {}
    for line in fields.get("Header", []):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if served:
        headers.setdefault("content-type", "text/xml")
    return Spec(
        description=" ".join(fields.get("Description", [""])[0].split()),
        expect=fields["Expect"][0],
        headers=headers,
        url=UPSTREAM_HOST + original,
        served=served,
    )


def _comment_bytes(body: bytes) -> bytes:
    """The file's leading comment as ASCII-compatible bytes (UTF-16/32 files are decoded first)."""
    head = body[:8192]
    for prefix, codec in _WIDE:
        if head.startswith(prefix):
            try:
                return head.decode(codec, "ignore").encode("utf-8")
            except LookupError:
                break
    return head


@lru_cache(maxsize=4)
def _manifest(root: Path) -> dict[str, str]:
    out = {}
    manifest = root / "MANIFEST.tsv"
    if manifest.exists():
        for line in manifest.read_text("utf-8").splitlines()[1:]:
            parts = line.split("\t")
            if len(parts) >= 4:
                out[parts[0]] = parts[3]
    return out


def original_path(root: Path, relpath: str) -> str | None:
    """The upstream path of a corpus file (MANIFEST `source`: owner/repo:path@commit)."""
    source = _manifest(root).get(relpath)
    if not source or ":" not in source:
        return None
    return source.split(":", 1)[1].rsplit("@", 1)[0]


def upstream_parse(ctx: FileCtx, spec: Spec) -> Any:
    """feedparser.parse() the way upstream's test runner calls it."""
    if spec.served:
        headers = dict(spec.headers)
        headers.setdefault("content-location", spec.url)
        return feedparser.parse(io.BytesIO(ctx.body), response_headers=headers)
    return feedparser.parse(io.BytesIO(ctx.body))


# --- translation -------------------------------------------------------------------------------

Path_ = tuple[Any, ...]


def _path(node: ast.AST) -> Path_ | None:
    """('entries', 0, 'title') for entries[0]['title'] or entries[0].title; None for anything else."""
    parts: list[Any] = []
    while True:
        if isinstance(node, ast.Subscript):
            key = node.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, (str, int)):
                parts.append(key.value)
            elif isinstance(key, ast.UnaryOp) and isinstance(key.op, ast.USub) and isinstance(key.operand, ast.Constant):
                parts.append(-key.operand.value)
            else:
                return None
            node = node.value
        elif isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Name):
            parts.append(node.id)
            return tuple(reversed(parts))
        else:
            return None


def _literal(node: ast.AST) -> tuple[bool, Any]:
    names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    if names - {"datetime", "time"}:
        return False, None
    try:
        value = eval(compile(ast.Expression(node), "<expect>", "eval"), {"__builtins__": {}, "datetime": datetime, "time": time})
    except Exception:  # noqa: BLE001 - not a literal we can use
        return False, None
    return True, value


def conjuncts(expr: str) -> list[ast.expr]:
    tree = ast.parse(expr.strip(), mode="eval").body
    if isinstance(tree, ast.BoolOp) and isinstance(tree.op, ast.And):
        return list(tree.values)
    return [tree]


# Where upstream's expected value is wrong for what we store, the value we expect instead, and why.
OUR_RULES: dict[tuple[str, int], tuple[Any, str]] = {
    ("xml-base/feedparser/http_entry_id_base_content_location.xml", 1): (
        "/relative/link",
        "atom:id is an identifier compared character by character (RFC 4287 4.2.6.1): we keep it as given, unresolved",
    ),
    ("encoding/feedparser/bozo_linenoise.xml", 1): (
        "\u2019<>\u201d\xa9",
        "upstream expects feedparser's windows-1252/latin-2 mojibake of UTF-8 bytes; we keep the valid UTF-8 and read the one stray byte as windows-1252",
    ),
}
_SKIPPED_ENTRY_RULE = " [our rule: an entry with no id, link, title or content is skipped]"
# Bare names of feedparser's result that come from HTTP headers: our crawl's fetch record keeps them.
_HTTP_NAMES = {"etag": "etag", "modified": "last_modified", "modified_parsed": "last_modified"}


def checks_for(ctx: FileCtx) -> list[Check]:
    spec = read_spec(ctx)
    if spec is None:
        return []
    ours = ctx.ours(spec.url, spec.headers)
    upstream: list[Any] = []

    def fp() -> Any:
        if not upstream:
            upstream.append(upstream_parse(ctx, spec))
        return upstream[0]

    env = _Env(ctx, spec, ours, fp, ctx.relpath.startswith("sanitize/"))
    out: list[Check] = []
    try:
        parts = conjuncts(spec.expect)
    except SyntaxError as exc:
        return [Check("expect: parses", False, PASSTHROUGH, f"bad Expect {spec.expect!r}: {exc}")]
    for index, node in enumerate(parts):
        if isinstance(node, ast.Constant):
            continue  # `Expect: 1`: only "does not crash", which every file is checked for anyway
        name = f"expect[{index}]: {ast.unparse(node)[:100]}"
        rule = OUR_RULES.get((ctx.relpath, index))
        translated = _translate(node, env, rule[0] if rule else _NO_RULE)
        if translated is None:
            out.append(_passthrough(name, node, fp))
            continue
        if rule:
            name += f" [our rule: {rule[1]}]"
        out.extend(Check(f"{name}{suffix}", ok, OURS, detail) for suffix, ok, detail in translated)
    return out


@dataclass(frozen=True)
class _Env:
    ctx: FileCtx
    spec: Spec
    ours: Ours
    fp: Callable[[], Any]
    sanitize: bool


_NO_RULE = object()


def _passthrough(name: str, node: ast.expr, fp: Callable[[], Any]) -> Check:
    result = fp()
    env = dict(result)
    env.update({"datetime": datetime, "time": time, "feedparser": feedparser})
    try:
        ok = bool(eval(compile(ast.Expression(node), "<expect>", "eval"), {"__builtins__": __builtins__}, env))
        detail = ""
    except Exception as exc:  # noqa: BLE001 - upstream's expression against upstream's dict
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    return Check(name, ok, PASSTHROUGH, detail)


Result = list[tuple[str, bool, str]]


def _translate(node: ast.expr, env: _Env, override: Any) -> Result | None:
    """Our checks for one conjunct, or None when it is about a field we do not keep."""
    if isinstance(node, ast.Name) and node.id in _HTTP_NAMES:
        return [_http_field(env, _HTTP_NAMES[node.id])]
    if not (isinstance(node, ast.Compare) and all(isinstance(op, ast.Eq) for op in node.ops)):
        return None
    operands = [node.left, *node.comparators]
    literals = []
    subjects = []
    for operand in operands:
        ok, value = _literal(operand)
        if ok:
            literals.append(value)
        else:
            subjects.append(operand)
    if len(literals) != 1 or not subjects:
        return None
    value = literals[0] if override is _NO_RULE else override
    out: Result = []
    for subject in subjects:
        if isinstance(subject, ast.Call) and _is_len_entries(subject):
            part: Result | None = [("", len(env.ours.entries) == value, f"ours {len(env.ours.entries)} entries, expected {value}")]
        else:
            path = _path(subject)
            part = _field(path, value, env) if path else None
        if part is None:
            return None  # one operand we do not keep: the whole conjunct is feedparser's
        label = f" [{ast.unparse(subject)}]" if len(subjects) > 1 else ""
        out.extend((label + suffix, ok, detail) for suffix, ok, detail in part)
    return out


def _is_len_entries(node: ast.Call) -> bool:
    return isinstance(node.func, ast.Name) and node.func.id == "len" and len(node.args) == 1 and _path(node.args[0]) == ("entries",)


def _http_field(env: _Env, attribute: str) -> tuple[str, bool, str]:
    from crawler.outcome import Response, decide_feed_response

    headers = {k.lower(): v for k, v in env.spec.headers.items()}
    outcome = decide_feed_response({"id": 1, "url": env.spec.url}, Response(env.spec.url, 200, headers, env.ctx.body), fetched_at=FETCHED_AT)
    fetch = outcome[-1]
    value = getattr(fetch, attribute, None)
    return "", bool(value), f"our fetch record has {attribute}={value!r}"


_TITLE = {("title",), ("title_detail", "value")}
_CONTENT = {("description",), ("summary",), ("summary_detail", "value"), ("content", 0, "value"), ("description_detail", "value")}
_AUTHOR = {("author",), ("author_detail", "name"), ("authors", 0, "name")}
_EMAIL = {("author_detail", "email"), ("authors", 0, "email")}
_DATES = {"published": "published_at", "issued": "published_at", "created": "published_at", "updated": "updated_at", "modified": "updated_at", "date": "updated_at"}


def _field(path: Path_, value: Any, env: _Env) -> Result | None:
    head, rest = path[0], path[1:]
    if head == "encoding" and not rest and isinstance(value, str):
        return [_encoding(env.ctx, env.ours, value)]
    if head == "feed":
        return _feed_field(rest, value, env)
    if head == "entries" and rest and isinstance(rest[0], int):
        index, rest = rest[0], rest[1:]
        if not _entry_field_kept(rest):
            return None
        if not -len(env.ours.entries) <= index < len(env.ours.entries):
            return [_missing_entry(env, index)]
        return _entry_field(rest, value, env.ours.entries[index], env, index)
    return None


def _missing_entry(env: _Env, index: int) -> tuple[str, bool, str]:
    """An entry we do not have: right only when it is one we skip on purpose (it has nothing to identify it by)."""
    upstream = env.fp().get("entries") or []
    item = upstream[index] if -len(upstream) <= index < len(upstream) else {}
    anonymous = not any(item.get(k) for k in ("id", "link", "title", "summary", "content"))
    said = env.ours.error or "; ".join(env.ours.feed.warnings if env.ours.feed else ())
    if anonymous:
        return _SKIPPED_ENTRY_RULE, "skipped" in said or "no entry in it" in said, f"ours: {said!r}"
    return "", False, f"ours has {len(env.ours.entries)} entries, no entry {index} (error: {env.ours.error})"


def _entry_field_kept(rest: Path_) -> bool:
    if rest in _TITLE or rest in _CONTENT or rest in _AUTHOR or rest in _EMAIL:
        return True
    if rest in {("link",), ("id",), ("guid",), ("category",), ("language",)}:
        return True
    if len(rest) == 1 and isinstance(rest[0], str) and rest[0].removesuffix("_parsed") in _DATES:
        return True
    return len(rest) == 3 and rest[0] == "tags" and rest[2] == "term"


def _feed_field(rest: Path_, value: Any, env: _Env) -> Result | None:
    feed = env.ours.feed
    if rest in _TITLE and isinstance(value, str):
        title = feed.title if feed else None
        result = [("", *C.same_title(title, value))]
        if env.sanitize:
            result.append((" [plain text]", C.no_markup(title), f"markup left in title {title!r}"))
        return result
    if rest == ("language",) and isinstance(value, str):
        mine = (feed.language or "").strip().lower().replace("_", "-") if feed else ""
        return [("", mine == value.strip().lower().replace("_", "-"), f"ours {mine!r}, expected {value!r}")]
    if (rest in _AUTHOR or rest in _EMAIL) and isinstance(value, str):
        name, email = C.split_author(feed.author) if feed and feed.author else (None, None)
        if rest in _EMAIL:
            return [("", (email or "").lower() == value.lower(), f"ours {email!r}, expected {value!r}")]
        return [("", *C.same_author(name, email, value))]
    return None


def _entry_field(rest: Path_, value: Any, entry: Any, env: _Env, index: int) -> Result | None:
    base = env.spec.url
    if rest in _TITLE and isinstance(value, str):
        result = [("", *C.same_title(entry.title, value))]
        if env.sanitize:
            result.append((" [plain text]", C.no_markup(entry.title), f"markup left in title {entry.title!r}"))
        return result
    if rest in _CONTENT and isinstance(value, str):
        raw = env.ours.feed.entries[index] if env.ours.feed else None
        given = (raw.content or raw.summary) if raw else None
        return _content(entry, value, given, base, env.sanitize)
    if rest == ("link",) and isinstance(value, str):
        return [("", *C.same_url(entry.url, value, base))]
    if rest in {("id",), ("guid",)} and isinstance(value, str):
        return [("", (entry.guid or "") == value.strip(), f"ours {entry.guid!r}, expected {value!r}")]
    if rest in _AUTHOR and isinstance(value, str):
        return [("", *C.same_author(entry.author, entry.author_email, value))]
    if rest in _EMAIL and isinstance(value, str):
        return [("", (entry.author_email or "").lower() == value.lower(), f"ours {entry.author_email!r}, expected {value!r}")]
    if len(rest) == 1 and isinstance(rest[0], str) and rest[0].removesuffix("_parsed") in _DATES:
        if not rest[0].endswith("_parsed") and C.to_instant(value) is None:
            return None  # a raw date string feedparser keeps as given: we keep only the instant
        field = _DATES[rest[0].removesuffix("_parsed")]
        # feedparser answers `updated` with the published date when there is none; so do we, in published_at
        mine = getattr(entry, field) or (entry.published_at if field == "updated_at" else None)
        return [("", *C.same_instant(mine, value))]
    if ((len(rest) == 3 and rest[0] == "tags" and rest[2] == "term") or rest == ("category",)) and isinstance(value, str):
        return [("", *C.has_categories(entry.categories, [value]))]
    if rest == ("language",) and isinstance(value, str):
        mine = entry.language or ""
        return [("", mine == value.lower(), f"ours {mine!r}, expected {value!r}")]
    return None


def _content(entry: Any, value: str, given: str | None, base: str, sanitize: bool) -> Result:
    """Content as text: upstream's text is in ours, or (our rule) the input's text outside what we drop whole is.

    Sanitized HTML is compared as a property, never byte for byte: nh3 writes other
    markup than feedparser's sanitizer, and it drops the fallback content of
    <iframe>/<object> and inline SVG/MathML that feedparser keeps.
    """
    result: Result = []
    texts = [entry.content_text, entry.summary]
    if C.folded(C.html_text(value)):
        ok, detail = C.text_contained(texts, value, summary=entry.summary)
        if not ok and given is not None:
            benign = C.folded(C.benign_text(given))
            ok = not benign or C.text_contained(texts, html.escape(C.benign_text(given)), summary=entry.summary)[0]
        result.append(("", ok, detail))
    alts = C.alt_texts(value, with_src=True)
    if alts:
        missing = [a for a in alts if C.folded(a) not in C.folded(" ".join(C.alt_texts(entry.content_html)))]
        result.append((" [alt text]", not missing, f"missing alt {missing!r} in {entry.content_html[:200]!r}"))
    if C.html_urls(value):
        result.append((" [links]", *C.urls_kept(entry.content_html, value, base)))
    if sanitize:
        problems = C.unsafe_parts(entry.content_html)
        result.append((" [safe]", not problems, f"unsafe: {problems}"))
    return result


def _encoding(ctx: FileCtx, ours: Ours, expected: str) -> tuple[str, bool, str]:
    """`encoding == X`: the text the file holds, decoded as X, is what we stored (correct Unicode)."""
    return ("", *C.decoded_text_kept(ctx.body, expected, _all_text(ours), ours.error))


def _all_text(ours: Ours) -> list[str]:
    parts = [ours.title or ""]
    for e in ours.entries:
        parts += [e.title, e.content_text, e.summary or "", e.author or "", *e.categories]
    return parts
