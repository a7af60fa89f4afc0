"""The typed records that cross boundaries: raw feed data, normalized entries, fetch outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

_Record = TypeVar("_Record")


def evolve(record: _Record, **changes: Any) -> _Record:
    """dataclasses.replace for the records of this module, at a fifth of its cost.

    replace() calls the class's __init__ with every field, 25 for an Entry, and each entry passes
    through four of them on its way to the store. None of these classes has a __post_init__ or a
    field left out of __init__, so copying the instance's fields and setting the changed ones gives
    the same record. An unknown name raises TypeError, as replace() does.
    """
    fields = record.__dataclass_fields__  # type: ignore[attr-defined]
    for name in changes:
        if name not in fields:
            raise TypeError(f"{type(record).__name__} has no field {name!r}")
    new = object.__new__(type(record))
    state = new.__dict__
    state.update(record.__dict__)
    state.update(changes)
    return new


@dataclass(frozen=True)
class RawEntry:
    """One entry as the feed gave it: strings as found, nothing normalized yet."""

    guid: str | None = None
    guid_is_permalink: bool = False
    link: str | None = None
    title: str | None = None
    title_type: str = "text"  # "text" or "html": how the feed says to read the title
    author: str | None = None  # raw author string ("Name", "a@b.c (Name)", ...)
    author_email: str | None = None
    published: str | None = None  # raw date strings, parsed by pipelines.metadata
    updated: str | None = None
    categories: tuple[str, ...] = ()
    summary: str | None = None  # HTML (or text) as given
    content: str | None = None  # the fullest body the feed carries, HTML
    image_urls: tuple[str, ...] = ()  # media:thumbnail, media:content, image enclosures, in that order
    language: str | None = None
    base_url: str | None = None  # xml:base or the feed's URL, for relative links
    author_url: str | None = None  # from the article page: the columnist's profile
    author_avatar: str | None = None
    author_bio: str | None = None


@dataclass(frozen=True)
class RawFeed:
    """A parsed feed: its own metadata and its raw entries."""

    url: str
    title: str | None = None
    link: str | None = None
    language: str | None = None
    author: str | None = None
    categories: tuple[str, ...] = ()
    ttl_minutes: int | None = None  # <ttl> or sy:updatePeriod/sy:updateFrequency, when given
    version: str = ""  # "rss20", "atom10", "json11", ...
    generator: str | None = None
    entries: tuple[RawEntry, ...] = ()
    warnings: tuple[str, ...] = ()  # entries skipped, recoverable XML errors


@dataclass(frozen=True)
class FeedContext:
    """What the pipelines need to know about the feed an entry came through."""

    feed_id: int | None
    feed_url: str
    feed_title: str | None = None
    feed_author: str | None = None
    feed_language: str | None = None
    feed_categories: tuple[str, ...] = ()  # the feed's own plus those the user assigned
    timezone: str | None = None  # IANA name or "+08:00"; for dates without a zone
    fetched_at: str = ""  # UTC ISO-8601; relative dates ("3小时前") count from here


@dataclass(frozen=True)
class Entry:
    """One normalized article, exactly as it is stored in the `entries` table."""

    id: str
    url: str | None
    guid: str | None
    title: str
    author: str | None
    author_email: str | None
    author_bio: str | None
    published_at: str | None
    updated_at: str | None
    published_raw: str | None  # kept when the date could not be trusted
    categories: tuple[str, ...]
    summary: str | None
    content_html: str
    content_text: str
    cover_image: str | None
    language: str | None
    word_count: int
    reading_minutes: int
    content_hash: str
    identity: str  # the key the id was made from: "url:...", "guid:..." or "hash:..."
    feed_guid: str | None = None  # the guid and link as this feed gave them (for the sighting)
    feed_link: str | None = None
    author_url: str | None = None  # the columnist's profile page and avatar, from the article page
    author_avatar: str | None = None
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class FeedFetch:
    """The outcome of one attempt to fetch a feed; the store records it on the `feeds` row."""

    feed_id: int
    url: str
    status: str  # "ok", "not_modified", "error"
    http_status: int | None = None
    error: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    fetched_at: str = ""
    duration_ms: int | None = None
    entries_seen: int = 0
    feed_title: str | None = None
    new_url: str | None = None  # a permanent redirect moved the feed here
    retry_after_s: int | None = None
    max_age_s: int | None = None  # Cache-Control / Expires / <ttl>: never check sooner
    gone: bool = False


@dataclass(frozen=True)
class EntryItem:
    """What travels through the pipelines: the raw entry, its feed, and the entry as normalized so far."""

    raw: RawEntry
    context: FeedContext
    entry: Entry | None = None
    content_source: str = "feed"  # "page" when the article page completed it
    page_error: str | None = None  # why the article page could not complete it
    page_method: str | None = None  # "recipe:<name>" or "fallback:readability"
    feed_hash: str | None = None  # fingerprint of what the feed itself said; a change refetches the page
    normalized: bool = False  # a worker process already ran the metadata, html and dedupe stages on it


@dataclass(frozen=True)
class EntryBatch:
    """A feed's normalized entries as one Scrapy item, when nothing but feedloom looks at items.

    Scrapy's machinery costs about as much per item as parsing one; the stage pipelines have nothing
    left to do for normalized entries, so the store takes them all at once. A user's pipeline, spider
    middleware or extension, or a feed export, gets one EntryItem per entry instead
    (`crawler.spiders.feeds.batches_allowed`).
    """

    items: tuple[EntryItem, ...]
