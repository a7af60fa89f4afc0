"""Expectations in one common shape (a feed and its items, fields we keep), compared with our output the same way for every convention."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tests.conformance import compare as C
from tests.conformance.model import OURS, Check, Ours

FEEDBURNER_REDIRECT = re.compile(r"^https?://(?:feedproxy\.google\.com|feeds\.[^/]+)/~r/")
ORIGLINK_RULE = "[our rule: the link is FeedBurner's feedburner:origLink, not its ~r/ redirect]"
SKIPPED_RULE = "[our rule: an entry with no id, link, title or content is skipped]"


@dataclass
class ExpItem:
    """What a convention says about one entry; None means "not said"."""

    title: str | None = None
    url: str | None = None
    guid: str | None = None
    author: str | None = None
    email: str | None = None
    published: Any = None
    updated: Any = None
    categories: list[str] | None = None
    contents: list[str] = field(default_factory=list)  # HTML or text whose text must be in ours
    cover: str | None = None
    anonymous: bool = False  # nothing to identify or read it by: we skip such entries
    content_as_words: bool = False  # the expected text has the right words in a wrong order (our rule)
    labels: dict[str, str] = field(default_factory=dict)  # field -> note appended to the check name


@dataclass
class ExpFeed:
    title: str | None = None
    language: str | None = None
    author: str | None = None
    email: str | None = None
    items: list[ExpItem] | None = None  # None: the convention says nothing about entries
    author_label: str = ""  # note appended to the author check's name


def is_anonymous(item: ExpItem) -> bool:
    return not (item.title or item.url or item.guid or any(C.folded(C.html_text(c)) for c in item.contents))


def compare_feed(expected: ExpFeed, ours: Ours, base: str, prefix: str = "") -> list[Check]:
    """Checks of our feed and entries against a convention's expectations, one per field it states."""
    out: list[Check] = []
    feed = ours.feed
    if expected.title is not None:
        out.append(C.check(f"{prefix}feed.title", C.same_title(feed.title if feed else None, expected.title)))
    if expected.language:
        mine = (feed.language or "").strip().lower().replace("_", "-") if feed else ""
        want = expected.language.strip().lower().replace("_", "-")
        out.append(Check(f"{prefix}feed.language", mine == want, OURS, f"ours {mine!r}, expected {want!r}"))
    if expected.author is not None or expected.email is not None or expected.author_label:
        name, email = C.split_author(feed.author) if feed and feed.author else (None, None)
        label = f"{prefix}feed.author" + (f" {expected.author_label}" if expected.author_label else "")
        if expected.author is None and expected.email is None:
            out.append(Check(label, name is None and email is None, OURS, f"ours ({name!r}, {email!r}), expected none"))
        else:
            out.append(C.check(label, C.same_author(name, email, expected.author, expected.email)))
    if expected.items is None:
        return out
    kept = [item for item in expected.items if not item.anonymous]
    skipped = len(expected.items) - len(kept)
    name = f"{prefix}entry count" + (f" {SKIPPED_RULE}" if skipped else "")
    out.append(Check(name, len(ours.entries) == len(kept), OURS, f"ours {len(ours.entries)}, expected {len(kept)} (+{skipped} skipped) error={ours.error}"))
    said = ours.error or "; ".join(feed.warnings if feed else ())
    position = 0
    for index, item in enumerate(expected.items):
        label = f"{prefix}entries[{index}]"
        if item.anonymous:
            out.append(Check(f"{label} {SKIPPED_RULE}", "skipped" in said or "no entry in it" in said, OURS, f"ours: {said!r}"))
            continue
        entry = ours.entries[position] if position < len(ours.entries) else None
        position += 1
        out.extend(compare_item(item, entry, base, label))
    return out


def compare_item(item: ExpItem, entry: Any, base: str, label: str) -> list[Check]:
    checks: list[tuple[str, tuple[bool, str]]] = []
    if entry is None:
        fields = [n for n in ("title", "url", "guid", "author", "email", "published", "updated", "categories", "cover") if getattr(item, n) is not None]
        return [Check(f"{label}.{n}", False, OURS, "ours has no such entry") for n in fields + (["content"] if item.contents else [])]
    if item.title is not None:
        checks.append(("title", C.same_title(entry.title, item.title)))
    if item.url is not None and FEEDBURNER_REDIRECT.search(item.url):
        slug = item.url.rstrip("/").rsplit("/", 1)[-1]
        original = bool(entry.url) and not FEEDBURNER_REDIRECT.search(entry.url) and entry.url.rstrip("/").endswith("/" + slug)
        ok = original or C.same_url(entry.url, item.url, base)[0]  # the redirect stays when there is no origLink
        checks.append(("url " + ORIGLINK_RULE, (ok, f"ours {entry.url!r}, expected the original of {item.url!r}")))
    elif item.url is not None:
        checks.append(("url", C.same_url(entry.url, item.url, base)))
    if item.guid is not None:
        checks.append(("guid", ((entry.guid or "") == item.guid.strip(), f"ours {entry.guid!r}, expected {item.guid!r}")))
    if item.author is not None:
        checks.append(("author", C.same_author(entry.author, entry.author_email, item.author)))
    if item.email is not None:
        checks.append(("email", ((entry.author_email or "").lower() == item.email.lower(), f"ours {entry.author_email!r}, expected {item.email!r}")))
    if item.published is not None:
        checks.append(("published", C.same_instant(entry.published_at, item.published)))
    if item.updated is not None:
        checks.append(("updated", C.same_instant(entry.updated_at, item.updated)))
    if item.categories is not None:
        checks.append(("categories", C.has_categories(entry.categories, item.categories)))
    for n, content in enumerate(c for c in item.contents if C.folded(C.html_text(c))):
        if item.content_as_words:
            checks.append((f"content[{n}]", C.words_contained(entry.content_text, content)))
        else:
            checks.append((f"content[{n}]", C.text_contained([entry.content_text, entry.summary], content, summary=entry.summary)))
    if item.cover is not None:
        checks.append(("cover", C.same_url(entry.cover_image, item.cover, base)))
    return [C.check(f"{label}.{name}" + (f" {item.labels[name]}" if name in item.labels else ""), result) for name, result in checks]


def first(values: Iterable[Any] | None) -> Any:
    for value in values or ():
        return value
    return None
