"""How an expected value from another project is compared with our normalized field: canonical forms, instants, text content."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import lxml.html
from lxml import etree

from pipelines.metadata import normalize_title, normalize_url, split_author
from tests.conformance.model import OURS, Check

_DANGEROUS_TAGS = ("script", "style", "iframe", "object", "embed", "applet", "form", "meta", "link", "base", "frame",
                   "frameset", "svg", "math", "input", "button", "textarea", "select")  # fmt: skip
_URL_ATTRS = ("href", "src", "srcset", "action", "formaction", "background", "poster", "data", "cite", "longdesc", "lowsrc", "dynsrc")
_SAFE_SCHEMES = ("http", "https", "mailto")


def folded(text: str | None) -> str:
    """Text without any whitespace: block boundaries differ between extractors, the characters must not."""
    return "".join((text or "").split())


def html_text(value: str | None) -> str:
    """The text a reader sees in an HTML fragment (script and style text excluded), entities decoded."""
    if not value:
        return ""
    if "<" not in value:
        return html.unescape(value)
    try:
        root = lxml.html.fragment_fromstring(value, create_parent="div")
    except (etree.ParserError, ValueError):
        return html.unescape(re.sub(r"<[^>]*(?:>|$)", " ", value))
    for bad in root.xpath(".//script|.//style|.//comment()|.//processing-instruction()"):
        bad.drop_tree() if hasattr(bad, "drop_tree") else bad.getparent().remove(bad)
    return root.text_content()


def html_urls(value: str | None) -> list[str]:
    """http(s) href/src values of an HTML fragment."""
    if not value or "<" not in value:
        return []
    try:
        root = lxml.html.fragment_fromstring(value, create_parent="div")
    except (etree.ParserError, ValueError):
        return []
    out = []
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        for attr in ("href", "src"):
            url = (el.get(attr) or "").strip()
            if url.lower().startswith(("http://", "https://")):
                out.append(url)
    return out


def same_title(ours: str | None, expected: str | None) -> tuple[bool, str]:
    """Titles as we store them: the expected value goes through our title rule (entities, tags, whitespace)."""
    want = {normalize_title(expected), normalize_title(expected, is_html=True)}
    return (ours or "") in want, f"ours {ours!r}, expected {sorted(want)!r}"


def canonical_url(value: str | None, base: str | None) -> str | None:
    if value is None:
        return None
    return normalize_url(value, base) or value.strip() or None


def same_url(ours: str | None, expected: str | None, base: str | None) -> tuple[bool, str]:
    """Canonical forms of both sides; an expected link that is not a web URL ("urn:...") canonicalizes to none."""
    want = normalize_url(expected, base) if expected else None
    return ours == want, f"ours {ours!r}, expected {want!r} (from {expected!r})"


def to_instant(value: Any) -> datetime | None:
    """An expected date as an aware UTC datetime: ISO-8601, RFC 822, time.struct_time or datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, time.struct_time) or (isinstance(value, tuple) and len(value) >= 6):
        return datetime(*tuple(value)[:6], tzinfo=UTC)
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    text = str(value).strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def same_instant(ours: str | None, expected: Any) -> tuple[bool, str]:
    want = to_instant(expected)
    mine = to_instant(ours) if ours else None
    return mine == want, f"ours {ours!r}, expected {want.isoformat() if want else None!r} (from {expected!r})"


def same_author(ours_name: str | None, ours_email: str | None, expected_name: str | None, expected_email: str | None = None) -> tuple[bool, str]:
    """Names compared after our split (a "mail (Name)" string gives its name); e-mail compared separately when given."""
    name, email = split_author(expected_name) if expected_name else (None, None)
    email = split_author(expected_email)[1] if expected_email else email
    ok = True
    if expected_name is not None:
        ok = ours_name == (name or None) or (name is None and ours_name is None)
    if email:
        ok = ok and (ours_email or "").lower() == email.lower()
    return ok, f"ours ({ours_name!r}, {ours_email!r}), expected ({name!r}, {email!r}) from ({expected_name!r}, {expected_email!r})"


def has_categories(ours: Sequence[str], expected: Iterable[str]) -> tuple[bool, str]:
    want = [normalize_title(v) for v in expected if normalize_title(v)]
    have = {c.casefold() for c in ours}
    missing = [w for w in want if w.casefold() not in have]
    return not missing, f"missing {missing!r} from {list(ours)!r}"


def text_contained(ours_texts: Sequence[str | None], expected_html: str | None, *, summary: str | None = None) -> tuple[bool, str]:
    """The text of the expected HTML is in our text; our shortened summary may stand for its start."""
    want = folded(html_text(expected_html))
    haystacks = [folded(t) for t in ours_texts if t]
    if any(want in h for h in haystacks):
        return True, ""
    if summary and summary.endswith("…"):
        head = folded(summary[:-1])
        if head and want.startswith(head):
            return True, ""
    return False, f"expected text {want[:200]!r} not in ours {[h[:200] for h in haystacks]!r}"


def words_contained(ours_text: str | None, expected_html: str | None) -> tuple[bool, str]:
    """The expected text's characters are all in ours (as many times), in any order: its words were regrouped."""
    from collections import Counter

    missing = Counter(folded(html_text(expected_html))) - Counter(folded(ours_text))
    return not missing, f"missing characters {''.join(sorted(missing.elements()))[:80]!r}"


def urls_kept(ours_html: str | None, expected_html: str | None, base: str | None) -> tuple[bool, str]:
    """Every absolute http(s) link or image of the expected HTML is in ours (both sides canonical)."""
    mine = {canonical_url(u, base) for u in _all_urls(ours_html or "")}
    missing = [u for u in html_urls(expected_html) if canonical_url(u, base) not in mine]
    return not missing, f"missing {missing!r} from {sorted(x for x in mine if x)!r}"


def _all_urls(value: str) -> list[str]:
    try:
        root = lxml.html.fragment_fromstring(value, create_parent="div") if "<" in value else None
    except (etree.ParserError, ValueError):
        return []
    if root is None:
        return []
    return [el.get(a) for el in root.iter() if isinstance(el.tag, str) for a in ("href", "src") if el.get(a)]


def unsafe_parts(value: str | None) -> list[str]:
    """What makes stored HTML unsafe: dangerous elements, event handlers, style, non-web URL schemes."""
    if not value or "<" not in value and "&" not in value and ":" not in value:
        return []
    problems: list[str] = []
    try:
        root = lxml.html.fragment_fromstring(value, create_parent="div") if "<" in value else None
    except (etree.ParserError, ValueError):
        return ["unparseable HTML"]
    if root is None:
        return []
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        tag = el.tag.lower().rpartition("}")[2]
        if tag in _DANGEROUS_TAGS:
            problems.append(f"<{tag}>")
        for attr, val in el.attrib.items():
            name = attr.lower()
            if name.startswith("on"):
                problems.append(f"{tag}[{name}]")
            elif name == "style":
                problems.append(f"{tag}[style]")
            elif name in _URL_ATTRS:
                for url in (val.split(",") if name == "srcset" else [val]):
                    scheme = _scheme(url.strip().split(" ")[0])
                    if scheme and scheme not in _SAFE_SCHEMES:
                        problems.append(f"{tag}[{name}]={scheme}:")
    return problems


def _scheme(url: str) -> str | None:
    cleaned = re.sub(r"[\x00-\x20]", "", html.unescape(url)).lower()
    m = re.match(r"([a-z][a-z0-9+.-]*):", cleaned)
    return m.group(1) if m else None


def no_markup(value: str | None) -> bool:
    """Plain text: no tag left in a title."""
    return not re.search(r"<\s*/?\s*[A-Za-z!?]", value or "")


def check(name: str, result: tuple[bool, str], kind: str = OURS) -> Check:
    ok, detail = result
    return Check(name=name, ok=ok, kind=kind, detail="" if ok else detail)


# Elements whose content is never article text in our policy (pipelines/html.py drops them whole):
# scripts, embedded objects and their fallback content, form controls, inline SVG/MathML, <head>.
DROPPED_WITH_CONTENT = frozenset(
    "script style noscript template svg math object embed applet param canvas head title meta link base frame "
    "frameset noframes noembed xmp plaintext textarea select option optgroup datalist input button keygen output "
    "dialog map area track iframe video audio".split()
)


def benign_text(value: str | None) -> str:
    """The text of an input fragment outside the elements our sanitizing policy drops with their content."""
    if not value:
        return ""
    if "<" not in value:
        return html.unescape(value)
    try:
        full = re.match(r"\s*<(!doctype|html)", value, re.I)
        doc = lxml.html.document_fromstring(value if full else f"<div>{value}</div>")
    except (etree.ParserError, ValueError):
        return html_text(value)
    for el in list(doc.iter()):
        dropped = not isinstance(el.tag, str) or el.tag.lower().rpartition("}")[2] in DROPPED_WITH_CONTENT
        if dropped and el.getparent() is not None:
            el.drop_tree()
    body = doc.find("body")
    return (body if body is not None else doc).text_content()


def alt_texts(value: str | None, *, with_src: bool = False) -> list[str]:
    """alt texts of the images of an HTML fragment (only of those with a src, when asked)."""
    if not value or "<img" not in value.lower():
        return []
    try:
        root = lxml.html.fragment_fromstring(value, create_parent="div")
    except (etree.ParserError, ValueError):
        return []
    return [img.get("alt") for img in root.iter("img") if (img.get("alt") or "").strip() and (img.get("src") or not with_src)]


# Elements whose text we keep somewhere (titles, bodies, names, labels).
_KEPT_TEXT_RE = re.compile(
    r"<((?:\w+:)?(?:title|description|summary|content|encoded|name|category|subject|creator|author))\b[^>]*>(.*?)</\1\s*>", re.S
)


_ENTRY_START_RE = re.compile(r"<(?:\w+:)?(?:item|entry)\b")
_ENTRY_RE = re.compile(r"<((?:\w+:)?(?:item|entry))\b.*?</\1\s*>", re.S)
_TITLE_RE = re.compile(r"<((?:\w+:)?title)\b[^>]*>.*?</\1\s*>", re.S)


def decoded_text_kept(body: bytes, codec: str, ours_texts: Sequence[str], error: str | None) -> tuple[bool, str]:
    """The text of the file's titles, bodies and names, decoded as `codec`, is in what we stored (correct Unicode)."""
    try:
        decoded = body.decode(codec)
    except (LookupError, UnicodeDecodeError) as exc:
        return False, f"cannot decode the file as {codec}: {exc}"
    decoded = decoded.lstrip("\ufeff")
    # The feed's title and its entries' fields: a channel's description, image title and the like we do not keep.
    first_entry = _ENTRY_START_RE.search(decoded)
    head = decoded[: first_entry.start()] if first_entry else decoded
    title = _TITLE_RE.search(head)
    blocks = [title.group(0)] if title else []
    blocks += [m.group(0) for m in _ENTRY_RE.finditer(decoded)]
    wanted = []
    for block in blocks:
        for m in _KEPT_TEXT_RE.finditer(block):
            inner = re.sub(r"<!\[CDATA\[(.*?)\]\]>", r"\1", m.group(2), flags=re.S)
            text = folded(html_text(html_text(inner)))
            if text and not text.isascii():  # only non-ASCII text can come out wrong
                wanted.append(text)
    if error:
        return False, f"ours: {error}"
    haystack = folded(" ".join(ours_texts))
    missing = [w for w in wanted if w not in haystack]
    return not missing, f"missing {missing[:3]!r} in ours {haystack[:200]!r}"
