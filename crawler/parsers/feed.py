"""Parse feed bytes plus HTTP headers into a RawFeed: RSS, Atom and RDF through feedparser (or fastfeed), JSON Feed ourselves."""

from __future__ import annotations

import codecs
import html
import io
import os
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urljoin

from crawler.items import RawEntry, RawFeed
from crawler.parsers.fastfeed import fast_parse
from crawler.parsers.jsonfeed import looks_like_json, parse_json_feed
from crawler.parsers.xmlguard import XmlRejected, defuse_xml
from pipelines.metadata import normalize_title


class FeedError(ValueError):
    """The input is not a usable feed; the message says why, for the user."""


_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._-]+)", re.I)
_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html[\s>])", re.I | re.S)
_UTF8_BOM = b"\xef\xbb\xbf"
_LEADING_SPACE = re.compile(rb"\s*")  # the bytes bytes.lstrip() removes


def _harmless(exc: BaseException) -> bool:
    """feedparser flags these, but the feed is read correctly all the same."""
    import feedparser  # loaded already: only its own results carry a bozo exception

    return isinstance(exc, (feedparser.NonXMLContentType, feedparser.CharacterEncodingOverride))


# Bodies no parser should be asked to read as a feed, and what to call them in the error.
_BINARY_MAGIC = (
    (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"), (b"RIFF", "a RIFF file (WebP, WAV, AVI)"),
    (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive"), (b"\x1f\x8b", "gzip-compressed data"),
)  # fmt: skip
_BINARY_TYPES = ("image/", "audio/", "video/", "font/")


def parse_feed(body: bytes, url: str, headers: Mapping[str, str] | None = None) -> RawFeed:
    """Parse one fetched feed. Raises FeedError when nothing in it can be used."""
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    if not body or body.isspace():  # isspace stops at the first other byte; strip() would copy the body
        raise FeedError("empty response body")
    if looks_like_json(body, headers.get("content-type", "")):
        return parse_json_feed(body, url)
    binary = _binary_kind(body, headers.get("content-type", ""))
    if binary:
        raise FeedError(f"not a feed: the response is {binary}")
    body, headers, doc_base = prepare_xml(body, url, headers)
    # fastfeed gives feedparser's answer for plain RSS 2.0 / Atom 1.0 at about a seventh of the CPU,
    # and declines everything else. A Content-Language would be feedparser's default language,
    # which the fast path does not model. FEEDLOOM_FEEDPARSER_ONLY=1 turns it off (for debugging).
    if os.environ.get("FEEDLOOM_FEEDPARSER_ONLY") != "1" and "content-language" not in headers:
        fast = fast_parse(body, url, doc_base)
        if fast is not None:
            return fast
    return parse_with_feedparser(body, url, headers, doc_base)


def prepare_xml(body: bytes, url: str, headers: Mapping[str, str]) -> tuple[bytes, dict[str, str], str]:
    """(UTF-8 defused body, headers for feedparser, document URL): what both XML parsers read. Raises FeedError."""
    headers = {k.lower(): v for k, v in headers.items()}
    body = transcode_to_utf8(body, headers.get("content-type", ""))
    try:
        body = defuse_xml(_normalize_prolog(body))
    except XmlRejected as exc:
        raise FeedError(str(exc)) from None
    # The body is UTF-8 now and says so: feedparser must not guess again (with a
    # Content-Location but no Content-Type it would read any bytes as ISO-8859-1).
    headers["content-type"] = "application/xml; charset=utf-8"
    # feedparser gets no document URL: it would resolve atom:id and guids against it (an id is
    # an identifier, not a link). xml:base still applies; we resolve links against the document.
    location = headers.pop("content-location", "")
    doc_base = urljoin(url, location) if url else location
    return body, headers, doc_base


def parse_with_feedparser(body: bytes, url: str, headers: Mapping[str, str], doc_base: str) -> RawFeed:
    """The RawFeed feedparser makes of a body prepare_xml returned. Raises FeedError."""
    import feedparser  # only feeds fastfeed declines need it: ~9 MB and 50-100 ms per process

    parsed = feedparser.parse(
        io.BytesIO(body),
        response_headers=dict(headers),
        sanitize_html=False,  # our own sanitizer runs later, on every field
        resolve_relative_uris=False,  # the html stage resolves against xml:base itself
    )
    return to_raw_feed(parsed, url, body, doc_base)


def transcode_to_utf8(body: bytes, content_type: str = "") -> bytes:
    """The document as UTF-8 bytes, its XML declaration saying so.

    Order of evidence: a BOM (or the UTF-16/32 byte pattern of "<"); bytes that are
    UTF-8 (a prolog or server that says otherwise is wrong far more often than such
    bytes are a coincidence), also when a few stray bytes break it; the HTTP charset,
    then the declared encoding, each only when the bytes decode with it; a detector
    (chardet) for undeclared legacy encodings; then the declared encoding with
    replacement characters; windows-1252 as the last resort.
    """
    bom_codec = _bom_codec(body)
    if bom_codec is not None:
        if bom_codec == "utf-8-sig":
            text = _decode_mostly_utf8(body[len(_UTF8_BOM):])
        else:
            text = body.decode(bom_codec, errors="replace").lstrip("\ufeff")
        return _declare_utf8(text.encode("utf-8"))
    if _is_utf8(body):
        return _declare_utf8(body) if _declared_encoding(body) not in (None, "utf-8", "utf8") else body
    if _mostly_utf8(body):
        return _declare_utf8(_decode_mostly_utf8(body).encode("utf-8"))
    labels: list[str] = []
    match = _CHARSET.search(content_type or "")
    if match:
        labels.append(match.group(1))
    declared = _declared_encoding(body)
    if declared:
        labels.append(declared)
    labels = [label for label in labels if label.lower() not in ("utf-8", "utf8")]
    detected = _detect(body)
    for label, errors in [*((label, "strict") for label in labels), (detected, "strict"), *((label, "replace") for label in labels)]:
        decoded = _decode(body, label, errors) if label else None
        if decoded is not None:
            return _declare_utf8(decoded.encode("utf-8"))
    return _declare_utf8(_decode_single_bytes(body).encode("utf-8"))


# Decode with the superset a label's users actually produce: GB2312 and GBK feeds routinely carry
# characters only GB18030 defines, and WHATWG maps the Latin-1 labels to windows-1252.
_CODEC_SUPERSETS = {
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "gb_2312-80": "gb18030", "euc-cn": "gb18030",
    "cp936": "gb18030", "big5": "big5hkscs", "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932",
    "x-sjis": "cp932", "euc-kr": "cp949", "ks_c_5601-1987": "cp949", "tis-620": "cp874", "iso-8859-11": "cp874",
    "iso-8859-1": "cp1252", "iso8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "l1": "cp1252",
    "us-ascii": "cp1252", "ascii": "cp1252", "iso-8859-9": "cp1254",
}  # fmt: skip
_DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]{0,200}?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
_ASCII_BYTES = re.compile(rb"[\x00-\x7f]+")
_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]"
    rb"|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def _bom_codec(body: bytes) -> str | None:
    if body.startswith(_UTF8_BOM):
        return "utf-8-sig"
    for prefix, codec in (
        (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"), (b"<\x00\x00\x00", "utf-32-le"), (b"\x00\x00\x00<", "utf-32-be"),
        (b"<\x00", "utf-16-le"), (b"\x00<", "utf-16-be"),
    ):  # fmt: skip
        if body.startswith(prefix):
            return codec
    return None


def _is_utf8(body: bytes) -> bool:
    if body.isascii():
        return True
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _declared_encoding(body: bytes) -> str | None:
    match = _DECLARED_ENCODING.match(body[:300])
    return match.group(1).decode("ascii").lower() if match else None


def _decode(body: bytes, label: str, errors: str = "strict") -> str | None:
    """body decoded as `label` (or the superset its users mean); None if it is not that."""
    name = label.strip().lower()
    for codec in dict.fromkeys((_CODEC_SUPERSETS.get(name, name), name)):
        try:
            return body.decode(codec, errors)
        except (LookupError, UnicodeDecodeError):
            continue
    return None


def _mostly_utf8(body: bytes) -> bool:
    """Non-ASCII bytes that are at least 3/4 valid UTF-8 sequences: UTF-8 with stray bytes.

    Legacy CJK text forms valid-looking pairs now and then, but well under half its bytes.
    """
    non_ascii = len(_ASCII_BYTES.sub(b"", body))
    valid = sum(len(m) for m in _UTF8_SEQUENCE.findall(body))
    return valid > 0 and valid * 4 >= non_ascii * 3


def _decode_mostly_utf8(body: bytes) -> str:
    """UTF-8, each byte that breaks it read as windows-1252 (Latin-1 where that has no character)."""
    view = memoryview(body)
    out: list[str] = []
    pos = 0
    while pos < len(body):
        try:
            out.append(codecs.utf_8_decode(view[pos:], "strict", True)[0])
            break
        except UnicodeDecodeError as exc:
            out.append(codecs.utf_8_decode(view[pos : pos + exc.start], "strict", True)[0])
            out.append(_decode_single_bytes(body[pos + exc.start : pos + exc.end]))
            pos += exc.end
    return "".join(out)


def _decode_single_bytes(data: bytes) -> str:
    """windows-1252, the five bytes it leaves undefined read as Latin-1 (what browsers do)."""
    text = data.decode("cp1252", errors="surrogateescape")
    return _ESCAPED_BYTE.sub(lambda m: chr(ord(m.group()) - 0xDC00), text)


def _detect(body: bytes) -> str | None:
    try:
        import chardet  # a dependency of readability-lxml; feedparser uses it too when present
    except ImportError:  # pragma: no cover
        return None
    guess = chardet.detect(body[:65536])
    label = guess.get("encoding")
    return label if label and (guess.get("confidence") or 0) >= 0.5 else None


def _declare_utf8(body: bytes) -> bytes:
    match = _DECLARED_ENCODING.match(body[:300])
    if match is None:
        return body
    return body[: match.start(1)] + b"utf-8" + body[match.end(1):]


def _normalize_prolog(body: bytes) -> bytes:
    """Whitespace before <?xml breaks strict parsers: the declaration must come first (the BOM is gone by now)."""
    start = _LEADING_SPACE.match(body).end()  # type: ignore[union-attr]  # matches everywhere; no copy of the body
    return body[start:] if start and body.startswith(b"<?xml", start) else body


def to_raw_feed(parsed: Any, url: str, body: bytes, doc_base: str) -> RawFeed:
    """A RawFeed from feedparser's result (or the same shape, as fastfeed builds it)."""
    feed = parsed.get("feed", {})
    entries = parsed.get("entries", [])
    version = parsed.get("version", "") or ""
    if not entries and not version:
        if _HTML_START.match(body[:2048]):
            raise FeedError("not a feed: the response is an HTML page")
        reason = parsed.get("bozo_exception")
        raise FeedError(f"not a feed: {_describe(reason) if reason else 'no RSS, Atom or RDF document found'}")
    if not entries and parsed.get("bozo") and not feed.get("title"):
        raise FeedError(f"broken feed: {_describe(parsed.get('bozo_exception'))}")
    language = feed.get("language") or None
    warnings: list[str] = []
    exc = parsed.get("bozo_exception")
    if parsed.get("bozo") and exc is not None and not _harmless(exc):
        warnings.append(_describe(exc))
    raw_entries = []
    # feedparser resolves ids against xml:base (even one it keeps in force after the element
    # that declared it): such ids are taken back as the feed wrote them.
    raw_ids = _raw_ids(body) if b"xml:base" in body else None
    for index, item in enumerate(entries):
        raw = _to_raw_entry(item, doc_base, language)
        if raw_ids is not None and raw.guid:
            raw = replace(raw, guid=_unresolved(raw.guid, raw_ids))
        if not (raw.guid or raw.link or raw.title or raw.summary or raw.content):
            warnings.append(f"entry {index + 1} skipped: no id, link, title or content")
            continue
        raw_entries.append(raw)
    if entries and not raw_entries:
        raise FeedError("broken feed: no entry in it has an id, link, title or content")
    name, email = _first_author(feed)
    author = f"{name} <{email}>" if name and email else name or email
    title_type = (feed.get("title_detail") or {}).get("type") or ""
    return RawFeed(
        url=url,
        # feeds.title is shown as text: the same title rule as entries (tags, entities, whitespace)
        title=normalize_title(feed.get("title"), is_html="html" in title_type) or None,
        link=_absolute(doc_base, feed.get("link")),
        language=language,
        author=author,
        categories=tuple(_terms(feed.get("tags"))),
        ttl_minutes=_ttl_minutes(feed),
        version=version,
        generator=feed.get("generator") or None,
        entries=tuple(raw_entries),
        warnings=tuple(warnings),
    )


def _to_raw_entry(item: Any, feed_url: str, feed_language: str | None) -> RawEntry:
    content, content_base, content_lang = _best_content(item)
    summary_detail = item.get("summary_detail") or {}
    title_detail = item.get("title_detail") or {}
    author, author_email = _first_author(item)
    base = _absolute(feed_url, content_base or summary_detail.get("base") or title_detail.get("base")) or feed_url
    return RawEntry(
        guid=item.get("id") or None,
        guid_is_permalink=bool(item.get("guidislink")),
        link=_absolute(feed_url, _alternate_link(item)),
        title=item.get("title"),
        title_type="html" if "html" in (title_detail.get("type") or "") else "text",
        author=author,
        author_email=author_email,
        published=item.get("published") or None,
        # feedparser answers `updated` with the published date when there is none; we want the truth.
        updated=dict.get(item, "updated") or None,
        categories=tuple(_terms(item.get("tags"))),
        summary=item.get("summary") or None,
        content=content,
        image_urls=tuple(u for u in (_absolute(feed_url, u) for u in _image_urls(item)) if u),
        language=content_lang or summary_detail.get("language") or feed_language,
        base_url=base,
    )


_MAX_ID_CANDIDATES = 64
_RAW_ID = re.compile(rb"<(?:[\w.-]+:)?(?:id|guid)\b[^>]*>\s*(?:<!\[CDATA\[)?\s*([^<\]]+?)\s*(?:\]\]>)?\s*</", re.I)


def _raw_ids(body: bytes) -> dict[str, list[str]]:
    """The ids and guids as written, by their last path segment (what a resolution keeps)."""
    out: dict[str, list[str]] = {}
    for m in _RAW_ID.finditer(body):
        raw = html.unescape(m.group(1).decode("utf-8", "replace"))
        out.setdefault(_last_segment(raw), []).append(raw)
    return out


def _last_segment(value: str) -> str:
    return value.casefold().rsplit("/", 1)[-1]


def _unresolved(guid: str, raw_ids: dict[str, list[str]]) -> str:
    """The id as written that resolves to `guid` (a relative reference is a suffix of its resolution)."""
    candidates = raw_ids.get(_last_segment(guid), [])
    if len(candidates) > _MAX_ID_CANDIDATES or guid in candidates:
        # Dozens of ids ending alike: a feed built to make this quadratic, not a resolution to undo.
        return guid
    folded = guid.casefold()  # urljoin lower-cases the scheme: HTTP://x comes back as http://x
    matches = [r for r in candidates if r and folded.endswith(r.lstrip("./").casefold())]
    return max(matches, key=len) if matches else guid


# An absolute http(s) URL that urljoin gives back unchanged, whatever the base: lower-case scheme,
# a plain host, a path without ";" (urlparse's params) and no empty "?" or "#" (urlunparse drops them).
_PLAIN_ABSOLUTE = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[A-Za-z0-9\-._~!$&'()*+,=:@/%]*)?(?:\?[^#\x00-\x20\x7f]+)?(?:#[^\x00-\x20\x7f]+)?")


def _absolute(base: str, url: str | None) -> str | None:
    """url resolved against the document (feedparser applied xml:base already); as given when that fails."""
    if not url:
        return None
    if _PLAIN_ABSOLUTE.fullmatch(url):  # most links: urljoin costs more than everything else per link
        return url
    try:
        return urljoin(base, url) if base else url
    except ValueError:
        return url


def _alternate_link(item: Any) -> str | None:
    """The entry's rel="alternate" link: feedparser's `link` can be an enclosure that came later.

    FeedBurner's <feedburner:origLink> comes first: the link beside it is a redirect
    through feedproxy, while the original is what other feeds of the article carry.
    """
    original = item.get("feedburner_origlink")
    if isinstance(original, str) and original.strip().lower().startswith(("http://", "https://")):
        return original.strip()
    for link in item.get("links") or ():
        if isinstance(link, Mapping) and link.get("rel", "alternate") == "alternate" and link.get("href"):
            return str(link["href"])
    return item.get("link") or None


def _first_author(obj: Any) -> tuple[str | None, str | None]:
    """(name, email) of the first author: feedparser's author_detail is the last one it saw."""
    for person in obj.get("authors") or ():
        if isinstance(person, Mapping) and (person.get("name") or person.get("email")):
            return person.get("name") or None, person.get("email") or None
    detail = obj.get("author_detail") or {}
    return detail.get("name") or obj.get("author") or None, detail.get("email") or None


def _best_content(item: Any) -> tuple[str | None, str | None, str | None]:
    best = None
    for detail in item.get("content") or ():
        value = detail.get("value") or ""
        if best is None or len(value) > len(best.get("value") or ""):
            best = detail
    if best is None or not (best.get("value") or "").strip():
        return None, None, None
    return best["value"], best.get("base") or None, best.get("language") or None


def _terms(tags: Any) -> list[str]:
    out = []
    for tag in tags or ():
        term = tag.get("term") or tag.get("label")
        if term:
            out.append(term)
    return out


def _image_urls(item: Any) -> list[str]:
    urls: list[str] = []
    for thumb in item.get("media_thumbnail") or ():
        if thumb.get("url"):
            urls.append(thumb["url"])
    for media in item.get("media_content") or ():
        medium = (media.get("medium") or "").lower()
        mtype = (media.get("type") or "").lower()
        if media.get("url") and (medium == "image" or mtype.startswith("image/")):
            urls.append(media["url"])
    for enclosure in item.get("enclosures") or ():
        if (enclosure.get("type") or "").lower().startswith("image/") and enclosure.get("href"):
            urls.append(enclosure["href"])
    image = item.get("image")
    if isinstance(image, Mapping) and image.get("href"):
        urls.append(image["href"])
    return urls


def _ttl_minutes(feed: Any) -> int | None:
    ttl = _small_int(feed.get("ttl"))
    if ttl is not None:
        return ttl
    period = (feed.get("sy_updateperiod") or "").strip().lower()
    minutes = {"hourly": 60, "daily": 1440, "weekly": 10080, "monthly": 43200, "yearly": 525600}.get(period)
    if minutes:
        freq = _small_int(feed.get("sy_updatefrequency") or "1")
        return max(1, minutes // freq) if freq else minutes
    return None


def _small_int(value: Any) -> int | None:
    """A count in ASCII digits, within reason: int() takes "²" for a digit and refuses 5,000 of them."""
    text = str(value or "").strip()
    return int(text) if re.fullmatch(r"[0-9]{1,9}", text) else None


def _binary_kind(body: bytes, content_type: str) -> str | None:
    """What a body plainly is when it is an image, a document or an archive rather than a feed."""
    for magic, kind in _BINARY_MAGIC:
        if body.startswith(magic):
            return kind
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type.startswith(_BINARY_TYPES) and not body.lstrip().startswith(b"<"):
        return media_type
    return None


def _describe(exc: Any) -> str:
    text = str(exc) or type(exc).__name__
    return text[:300]
