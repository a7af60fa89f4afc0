"""Pure decider: one HTTP response for a feed -> the fetch outcome and the entries to normalize."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from crawler.items import EntryItem, FeedContext, FeedFetch, RawFeed
from crawler.timeutil import from_iso


@dataclass(frozen=True)
class Response:
    """The parts of an HTTP response the decider reads."""

    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes
    redirects: Sequence[int] = ()  # status codes of the redirect hops that led here


def feed_context(feed: Mapping[str, Any], parsed: RawFeed | None, fetched_at: str) -> FeedContext:
    categories: list[str] = list(json.loads(feed.get("categories") or "[]"))
    if parsed is not None:
        categories.extend(parsed.categories)
    return FeedContext(
        feed_id=feed.get("id"),
        feed_url=feed["url"],
        feed_title=(parsed.title if parsed else None) or feed.get("title"),
        feed_author=parsed.author if parsed else None,
        feed_language=(parsed.language if parsed else None) or feed.get("language"),
        feed_categories=tuple(categories),
        timezone=feed.get("timezone") or None,
        fetched_at=fetched_at,
    )


def decide_feed_response(
    feed: Mapping[str, Any], response: Response, *, fetched_at: str, duration_ms: int | None = None
) -> list[FeedFetch | EntryItem]:
    """What one response means for its feed: the entries it carries, then its FeedFetch record."""
    base = {
        "feed_id": feed["id"],
        "url": feed["url"],
        "http_status": response.status,
        "fetched_at": fetched_at,
        "duration_ms": duration_ms,
    }
    new_url = response.url if response.redirects and all(code in (301, 308) for code in response.redirects) else None
    status = response.status
    if status == 304:
        return [FeedFetch(status="not_modified", max_age_s=max_age(response.headers, fetched_at), new_url=new_url, **base)]
    if status == 410:
        return [FeedFetch(status="error", error="410 Gone: the feed was removed; deactivated", gone=True, **base)]
    if status >= 400 or status < 200:
        retry = retry_after(response.headers, fetched_at) if status in (429, 503) else None
        reason = f"HTTP {status}"
        if retry:
            reason += f" (Retry-After {retry}s)"
        return [FeedFetch(status="error", error=reason, retry_after_s=retry, **base)]
    if status >= 300:
        return [FeedFetch(status="error", error=f"HTTP {status} without a usable Location", **base)]
    # Imported here: a crawl of unchanged feeds (all 304) never loads the parsers.
    from crawler.parsers.feed import FeedError, parse_feed

    try:
        parsed = parse_feed(response.body, response.url, response.headers)
    except FeedError as exc:
        return [FeedFetch(status="error", error=str(exc), **base)]
    ctx = feed_context(feed, parsed, fetched_at)
    ttl_s = (parsed.ttl_minutes or 0) * 60
    fetch = FeedFetch(
        status="ok",
        etag=response.headers.get("etag") or None,
        last_modified=response.headers.get("last-modified") or None,
        entries_seen=len(parsed.entries),
        feed_title=parsed.title,
        new_url=new_url,
        max_age_s=max(max_age(response.headers, fetched_at) or 0, ttl_s) or None,
        **base,
    )
    # The fetch record (with the new ETag) comes last: a crawl killed before it lands
    # fetches the feed again instead of taking a 304 for entries it never stored.
    out: list[FeedFetch | EntryItem] = [EntryItem(raw=raw, context=ctx) for raw in parsed.entries]
    out.append(fetch)
    return out


def error_outcome(feed: Mapping[str, Any], error: str, *, fetched_at: str, duration_ms: int | None = None) -> FeedFetch:
    return FeedFetch(
        feed_id=feed["id"], url=feed["url"], status="error", error=error, fetched_at=fetched_at, duration_ms=duration_ms
    )


def max_age(headers: Mapping[str, str], now: str) -> int | None:
    """Seconds the server asks us not to come back before (Cache-Control max-age, else Expires)."""
    cache = headers.get("cache-control", "")
    for part in cache.split(","):
        name, _, value = part.strip().partition("=")
        if name.lower() in ("max-age", "s-maxage") and value.strip().isdigit():
            return int(value.strip())
    expires = headers.get("expires")
    if expires:
        return _seconds_until(expires, now)
    return None


def retry_after(headers: Mapping[str, str], now: str) -> int | None:
    value = (headers.get("retry-after") or "").strip()
    if not value:
        return None
    if value.isdigit():
        return int(value)
    return _seconds_until(value, now)


def _seconds_until(http_date: str, now: str) -> int | None:
    try:
        moment = parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return None
    seconds = int((moment - from_iso(now)).total_seconds())
    return seconds if seconds > 0 else None
