"""Pure deciders for article pages: when to fetch an entry's page, and how its fields complete the entry."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from crawler.items import EntryItem, RawEntry
from crawler.recipes import Recipe

if TYPE_CHECKING:  # the article parser (lxml.html, readability) loads only when a page is looked at
    from crawler.parsers.article import ArticleFields


def feed_side_hash(raw: RawEntry) -> str:
    """What the feed says about an entry; when it changes, the page is fetched again."""
    parts = (raw.title or "", raw.summary or "", raw.content or "", raw.published or "", raw.updated or "")
    return hashlib.blake2b("\x1f".join(parts).encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


def page_reason(
    raw: RawEntry,
    *,
    feed_full_content: int | None,
    recipe: Recipe | None,
    known: Mapping[str, Any] | None,
    text: Callable[[], str | None] | None = None,
) -> str | None:
    """Why the entry's page should be fetched now, or None to store the feed's content as it is.

    `text`, when given, returns the body's cleaned text (`Entry.content_text`, None when normalizing
    failed); it is called only when the summary check is reached, and spares that check a parse of
    the raw body (`looks_like_summary`).
    """
    if not raw.link or not _is_web_link(raw.link):
        return None
    if feed_full_content == 0:
        return None
    if known is not None and known.get("feed_hash") == feed_side_hash(raw):
        # Seen before and unchanged on the feed's side: the stored entry stands.
        return None
    if feed_full_content == 1:
        return "the feed is set to full content"
    if recipe is not None and recipe.full_content:
        return f"the {recipe.name} recipe asks for the page"
    from crawler.parsers.article import looks_like_summary

    if looks_like_summary(raw.content, raw.summary, text=text() if text is not None else None):
        return "the feed carries only a summary"
    return None


def _is_web_link(link: str) -> bool:
    """Whether urlsplit finds an http(s) scheme in link (and raises what it raises)."""
    if isinstance(link, str) and link.startswith(("http://", "https://")) and link.isascii() and "[" not in link and "]" not in link:
        # What urlsplit would answer, without its work (its cache misses on every new link): nothing
        # before the scheme to strip, and no bracketed or non-ASCII host for it to refuse.
        return True
    return urlsplit(link).scheme in ("http", "https")


def page_problem(fields: ArticleFields, recipe: Recipe | None) -> str | None:
    """Why an extraction is not good enough to replace the feed's content, or None."""
    if recipe is not None and fields.method == f"recipe:{recipe.name}" and fields.text_length < recipe.min_text_chars:
        return (
            f"article page not extracted: the {recipe.name} recipe found only {fields.text_length} characters "
            f"(at least {recipe.min_text_chars} expected; has the site changed its markup?)"
        )
    if not fields.content_html:
        return "article page not extracted: no body found"
    return None


def complete_from_page(item: EntryItem, fields: ArticleFields, page_url: str) -> EntryItem:
    """The entry with what its page added: the full body, and author, categories, date and cover where missing."""
    raw = item.raw
    categories = tuple(dict.fromkeys((*raw.categories, *fields.categories)))
    images = raw.image_urls if raw.image_urls else ((fields.cover_image,) if fields.cover_image else ())
    page_raw = replace(
        raw,
        title=raw.title or fields.title,
        title_type=raw.title_type if raw.title else "text",
        content=fields.content_html or raw.content,
        author=fields.author or raw.author,
        published=raw.published or fields.published,
        categories=categories,
        image_urls=images,
        language=fields.language or raw.language,
        base_url=page_url,
        author_url=fields.author_url,
        author_avatar=fields.author_avatar,
        author_bio=fields.author_bio,
    )
    return replace(item, raw=page_raw, content_source="page", page_error=None, page_method=fields.method)


def page_failed(item: EntryItem, reason: str) -> EntryItem:
    """The entry as the feed gave it, with why its page could not complete it."""
    return replace(item, page_error=reason[:500])
