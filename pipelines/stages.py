"""The item pipelines in order, metadata -> html -> dedupe, each a thin adapter over pure functions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crawler.items import Entry, EntryItem, FeedContext, RawEntry, evolve
from pipelines.dedupe import identify

if TYPE_CHECKING:
    from pipelines.html import HtmlRules

# The html and metadata modules (lxml, nh3, some 90 regular expressions) are imported by the first
# entry that needs them, not with the pipelines: an unchanged re-crawl, all 304, never does.

SUMMARY_CHARS = 280


def apply_html(entry: Entry, *, base_url: str | None, rules: HtmlRules | None = None) -> Entry:
    """The html stage: sanitize the body, move the bio out, derive text, summary, cover, language, counts.

    `rules` None means the default rules (pipelines.html.DEFAULT_RULES).
    """
    from pipelines.html import DEFAULT_RULES, clean_html, cleaned_text
    from pipelines.metadata import detect_language, normalize_url, text_stats

    if rules is None:
        rules = DEFAULT_RULES
    # the first image is all a cover needs, and none when the feed named one
    clean = clean_html(entry.content_html, base_url=base_url, rules=rules, max_images=1 if entry.cover_image is None else 0)
    text = clean.text
    if not entry.summary or entry.summary == entry.content_html:
        summary_text = text  # the feed's only body is its summary: no second cleaning
    else:
        summary_text = cleaned_text(entry.summary, base_url=base_url, rules=rules)
    if not summary_text or summary_text == text:
        summary_text = text
    summary = _shorten(summary_text, SUMMARY_CHARS) or None
    cover = entry.cover_image
    if cover is None and clean.images:
        cover = clean.images[0]  # already meaningful: no pixels, icons, avatars or emoji
    cover = normalize_url(cover) if cover else None
    title = entry.title or _shorten(text.split("\n", 1)[0], 80)
    word_count, minutes = text_stats(text)
    return evolve(
        entry,
        title=title,
        content_html=clean.html,
        content_text=text,
        summary=summary,
        author_bio=clean.bio or entry.author_bio,
        cover_image=cover,
        language=detect_language(entry.language, text or title),
        word_count=word_count,
        reading_minutes=minutes,
    )


def metadata_stage(raw: RawEntry, context: FeedContext) -> Entry:
    """The metadata stage: the feed's fields, plus the columnist's profile when the article page gave one."""
    from pipelines.metadata import normalize_metadata, normalize_title, normalize_url

    entry = normalize_metadata(raw, context)
    if raw.author_url or raw.author_avatar or raw.author_bio:
        base = raw.base_url or entry.url
        entry = evolve(
            entry,
            author_url=normalize_url(raw.author_url, base),
            author_avatar=normalize_url(raw.author_avatar, base),
            author_bio=normalize_title(raw.author_bio, is_html=True) or entry.author_bio,
        )
    return entry


def normalize_entry(raw: RawEntry, context: FeedContext, rules: HtmlRules | None = None) -> Entry:
    """The three stages in a row, as the crawl runs them: what `feedloom parse` prints."""
    entry = metadata_stage(raw, context)
    entry = apply_html(entry, base_url=raw.base_url or entry.url or context.feed_url, rules=rules)
    return identify(entry)


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


# Each stage passes over an item a worker process normalized already (crawler/workers.py):
# the worker ran these same functions with the same rules.


class MetadataPipeline:
    def process_item(self, item: Any) -> Any:
        if isinstance(item, EntryItem) and item.entry is None and not item.normalized:
            return evolve(item, entry=metadata_stage(item.raw, item.context))
        return item


class HtmlPipeline:
    def __init__(self, rules: HtmlRules | None = None) -> None:
        self.rules = rules  # None: the default rules

    @classmethod
    def from_crawler(cls, crawler: Any) -> HtmlPipeline:
        path = crawler.settings.get("FEEDLOOM_HTML_RULES")
        if not path:
            return cls()
        # A broken rules file fails here, before any fetch.
        from pipelines.html import load_html_rules

        return cls(load_html_rules(path))

    def process_item(self, item: Any) -> Any:
        if isinstance(item, EntryItem) and item.entry is not None and not item.normalized:
            base = item.raw.base_url or item.entry.url or item.context.feed_url
            return evolve(item, entry=apply_html(item.entry, base_url=base, rules=self.rules))
        return item


class DedupePipeline:
    def process_item(self, item: Any) -> Any:
        if isinstance(item, EntryItem) and item.entry is not None and not item.normalized:
            return evolve(item, entry=identify(item.entry))
        return item
