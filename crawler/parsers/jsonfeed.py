"""Parse JSON Feed 1.0 / 1.1 bytes into a RawFeed, checking every type on the way."""

from __future__ import annotations

import json
import re
from typing import Any

from crawler.items import RawEntry, RawFeed

# Deeper nesting than this is never a feed; json.loads would recurse on it.
MAX_NESTING = 64
# As many entries as the XML guard's element cap lets through (crawler.parsers.xmlguard.MAX_ELEMENTS):
# 16 MB of minimal items would be 390,000 entries and two and a half minutes of every crawl.
MAX_ITEMS = 50_000
# A \ud800-style escape: json.loads turns a lone one into a surrogate no UTF-8 writer (the store) accepts.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def looks_like_json(body: bytes, content_type: str) -> bool:
    head = body[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"{") or ("json" in content_type.lower() and head.startswith((b"{", b"[")))


def parse_json_feed(body: bytes, url: str) -> RawFeed:
    from crawler.parsers.feed import FeedError

    if _nesting_depth(body) > MAX_NESTING:
        raise FeedError("not a JSON Feed: nesting too deep")
    try:
        text = body.decode("utf-8-sig")
        data = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise FeedError(f"not a JSON Feed: invalid JSON ({str(exc)[:120]})") from None
    if _SURROGATE_ESCAPE.search(text):
        data = _without_surrogates(data)
    if not isinstance(data, dict):
        raise FeedError("not a JSON Feed: the top level is not an object")
    version = _text(data.get("version")) or ""
    if "jsonfeed.org/version/" not in version and not isinstance(data.get("items"), list):
        raise FeedError("not a JSON Feed: no jsonfeed.org version and no items list")
    items = data.get("items")
    if not isinstance(items, list):
        raise FeedError("not a JSON Feed: items is not a list")
    if len(items) > MAX_ITEMS:
        raise FeedError(f"more than {MAX_ITEMS:,} items in one JSON Feed: too costly to process")
    feed_authors = _authors(data)
    language = _text(data.get("language"))
    entries: list[RawEntry] = []
    warnings: list[str] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            warnings.append(f"item {index} skipped: not an object")
            continue
        entries.append(_entry(item, url, language))
    return RawFeed(
        url=url,
        title=_text(data.get("title")),
        link=_text(data.get("home_page_url")),
        language=language,
        author=_author_string(feed_authors[0]) if feed_authors else None,
        categories=(),
        version="json11" if version.endswith("1.1") else "json10" if version.endswith("1") else "json",
        entries=tuple(entries),
        warnings=tuple(warnings),
    )


def _entry(item: dict[str, Any], feed_url: str, language: str | None) -> RawEntry:
    authors = _authors(item)
    content = _text(item.get("content_html"))
    if content is None:
        text = _text(item.get("content_text"))
        if text is not None:
            content = "".join(f"<p>{_escape(p)}</p>" for p in text.split("\n\n") if p.strip())
    images = [u for u in (_text(item.get("image")), _text(item.get("banner_image"))) if u]
    attachments = item.get("attachments")
    for attachment in attachments if isinstance(attachments, list) else ():
        if isinstance(attachment, dict) and str(attachment.get("mime_type", "")).startswith("image/") and _text(attachment.get("url")):
            images.append(str(attachment["url"]))
    raw_id = item.get("id")
    guid = str(raw_id) if isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool) else None
    return RawEntry(
        guid=guid or None,
        guid_is_permalink=False,
        link=_text(item.get("url")) or _text(item.get("external_url")),
        title=_text(item.get("title")),
        title_type="text",
        author=authors[0][0] if authors else None,
        author_email=authors[0][1] if authors else None,
        published=_date(item.get("date_published")),
        updated=_date(item.get("date_modified")),
        categories=tuple(t for t in (item.get("tags") or ()) if isinstance(t, str)) if isinstance(item.get("tags"), list) else (),
        summary=_text(item.get("summary")),
        content=content,
        image_urls=tuple(images),
        language=_text(item.get("language")) or language,
        base_url=_text(item.get("url")) or feed_url,
    )


def _authors(obj: dict[str, Any]) -> list[tuple[str | None, str | None]]:
    """(name, email) of each author; JSON Feed has no e-mail field, so a `mailto:` url is the e-mail."""
    out: list[tuple[str | None, str | None]] = []
    authors = obj.get("authors")
    if isinstance(authors, list):
        candidates = authors
    elif isinstance(obj.get("author"), dict):
        candidates = [obj["author"]]
    else:
        candidates = []
    for author in candidates:
        if not isinstance(author, dict):
            continue
        name = _text(author.get("name"))
        url = (_text(author.get("url")) or "").strip()
        email = None
        if url.lower().startswith("mailto:"):
            email = url[len("mailto:") :].split("?", 1)[0].strip() or None
        if name or email:
            out.append((name, email))
    return out


def _author_string(person: tuple[str | None, str | None]) -> str | None:
    name, email = person
    return f"{name} <{email}>" if name and email else name or email


def _without_surrogates(value: Any) -> Any:
    """The decoded JSON with every lone surrogate replaced by U+FFFD (nesting is already bounded)."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_without_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    return value


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value
    return None


def _date(value: Any) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return _text(value)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _nesting_depth(body: bytes) -> int:
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x7B, 0x5B):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_NESTING:
                    return deepest
        elif byte in (0x7D, 0x5D):
            depth -= 1
    return deepest
