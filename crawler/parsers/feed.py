"""Parse feed bytes plus HTTP headers into a RawFeed: RSS, Atom and RDF through feedparser, JSON Feed ourselves."""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from typing import Any

import feedparser

from crawler.items import RawEntry, RawFeed
from crawler.parsers.jsonfeed import looks_like_json, parse_json_feed
from crawler.parsers.xmlguard import XmlRejected, defuse_xml


class FeedError(ValueError):
    """The input is not a usable feed; the message says why, for the user."""


# Encodings that Python's codecs decode too strictly: GB2312 and GBK feeds routinely
# carry characters only GB18030 (their superset) defines.
_ENCODING_SUPERSETS = {b"gb2312": b"gb18030", b"gbk": b"gb18030", b"x-gbk": b"gb18030", b"gb_2312-80": b"gb18030"}
_XML_DECL_ENCODING = re.compile(rb"""(<\?xml[^>]{0,200}?encoding\s*=\s*["'])([A-Za-z0-9._-]+)(["'])""", re.I)
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._-]+)", re.I)
_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html[\s>])", re.I | re.S)
_UTF8_BOM = b"\xef\xbb\xbf"
# feedparser flags these, but the feed is read correctly all the same.
_HARMLESS = (feedparser.NonXMLContentType, feedparser.CharacterEncodingOverride)


def parse_feed(body: bytes, url: str, headers: Mapping[str, str] | None = None) -> RawFeed:
    """Parse one fetched feed. Raises FeedError when nothing in it can be used."""
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    if not body or not body.strip():
        raise FeedError("empty response body")
    if looks_like_json(body, headers.get("content-type", "")):
        return parse_json_feed(body, url)
    try:
        body = defuse_xml(_normalize_prolog(body))
    except XmlRejected as exc:
        raise FeedError(str(exc)) from None
    headers = _normalize_charset_header(headers)
    headers.setdefault("content-location", url)
    parsed = feedparser.parse(
        io.BytesIO(body),
        response_headers=headers,
        sanitize_html=False,  # our own sanitizer runs later, on every field
        resolve_relative_uris=False,  # the html stage resolves against xml:base itself
    )
    return _to_raw_feed(parsed, url, body)


def _normalize_prolog(body: bytes) -> bytes:
    """Whitespace before <?xml and GB2312 labels break strict parsers; fix both."""
    stripped = body.lstrip()
    if stripped.startswith(_UTF8_BOM):
        stripped = stripped[len(_UTF8_BOM):].lstrip()
        if stripped.startswith(b"<?xml"):
            body = _UTF8_BOM + stripped
    elif stripped.startswith(b"<?xml"):
        body = stripped
    match = _XML_DECL_ENCODING.search(body, 0, 300)
    if match and match.group(2).lower() in _ENCODING_SUPERSETS:
        body = body[: match.start(2)] + _ENCODING_SUPERSETS[match.group(2).lower()] + body[match.end(2):]
    return body


def _normalize_charset_header(headers: dict[str, str]) -> dict[str, str]:
    ctype = headers.get("content-type")
    if ctype:
        match = _CHARSET.search(ctype)
        if match and match.group(1).lower().encode() in _ENCODING_SUPERSETS:
            headers = dict(headers)
            headers["content-type"] = ctype[: match.start(1)] + "gb18030" + ctype[match.end(1):]
    return headers


def _to_raw_feed(parsed: Any, url: str, body: bytes) -> RawFeed:
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
    if parsed.get("bozo") and exc is not None and not isinstance(exc, _HARMLESS):
        warnings.append(_describe(exc))
    raw_entries = []
    for index, item in enumerate(entries):
        raw = _to_raw_entry(item, url, language)
        if not (raw.guid or raw.link or raw.title or raw.summary or raw.content):
            warnings.append(f"entry {index + 1} skipped: no id, link, title or content")
            continue
        raw_entries.append(raw)
    if entries and not raw_entries:
        raise FeedError("broken feed: no entry in it has an id, link, title or content")
    author = feed.get("author_detail", {}).get("name") or feed.get("author") or None
    return RawFeed(
        url=url,
        title=feed.get("title") or None,
        link=feed.get("link") or None,
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
    author_detail = item.get("author_detail") or {}
    author = author_detail.get("name") or item.get("author") or None
    if author is None and item.get("authors"):
        author = (item["authors"][0] or {}).get("name")
    base = content_base or summary_detail.get("base") or title_detail.get("base") or feed_url
    return RawEntry(
        guid=item.get("id") or None,
        guid_is_permalink=bool(item.get("guidislink")),
        link=item.get("link") or None,
        title=item.get("title"),
        title_type="html" if "html" in (title_detail.get("type") or "") else "text",
        author=author,
        author_email=author_detail.get("email") or None,
        published=item.get("published") or None,
        # feedparser answers `updated` with the published date when there is none; we want the truth.
        updated=dict.get(item, "updated") or None,
        categories=tuple(_terms(item.get("tags"))),
        summary=item.get("summary") or None,
        content=content,
        image_urls=tuple(_image_urls(item)),
        language=content_lang or summary_detail.get("language") or feed_language,
        base_url=base,
    )


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
    ttl = feed.get("ttl")
    if ttl and str(ttl).strip().isdigit():
        return int(str(ttl).strip())
    period = (feed.get("sy_updateperiod") or "").strip().lower()
    minutes = {"hourly": 60, "daily": 1440, "weekly": 10080, "monthly": 43200, "yearly": 525600}.get(period)
    if minutes:
        freq = str(feed.get("sy_updatefrequency") or "1").strip()
        return max(1, minutes // int(freq)) if freq.isdigit() and int(freq) > 0 else minutes
    return None


def _describe(exc: Any) -> str:
    text = str(exc) or type(exc).__name__
    return text[:300]
