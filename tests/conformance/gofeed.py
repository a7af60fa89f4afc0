"""gofeed's expected JSON (`X.xml` + `X.json`, `X.json` + `X_expected.json`), translated into the common shape.

Three models appear: gofeed's universal (translator) Feed, and its format models
(atom.Feed, rss.Feed, json.Feed). Only fields we keep are read: titles, links,
guids/ids, authors, dates (the *Parsed instants), categories, bodies as text,
the item image, the feed's language and author. Keys absent from the JSON mean
"empty"; we do not check emptiness, only what upstream states.
"""

from __future__ import annotations

import json
from typing import Any

from tests.conformance import common
from tests.conformance.common import ExpFeed, ExpItem
from tests.conformance.model import OURS, Check, FileCtx

BASE = "https://corpus.example/"

# Where gofeed's expected value is wrong for what we store: (file, field) -> (value we expect, why).
OUR_RULES: dict[tuple[str, str], tuple[Any, str]] = {
    **{
        (name, "entries[0].url"): ("http://example.org", "an RSS item has one <link>: the first; gofeed takes a later <link href>")
        for name in ("rss/gofeed-parser/rss_channel_item_links.xml", "rdf/gofeed-parser/rdf_item_links.xml",
                     "rss/gofeed-translator/feed_item_links_-_rss_channel_item_links.xml")
    },
    **{
        (f"rss/gofeed-translator/feed_author_-_rss_channel_webMaster_{kind}.xml", "feed.author"): (
            None, "webMaster is the site's technical contact, not the author of its posts"
        )
        for kind in ("email", "emailAndName", "nameAndEmail")
    },
}  # fmt: skip


def expected_path(ctx: FileCtx) -> Any:
    rel = ctx.relpath
    if rel.endswith(".xml"):
        return ctx.sibling(ctx.path.stem + ".json")
    if rel.endswith(".json") and not rel.endswith("_expected.json"):
        return ctx.sibling(ctx.path.stem + "_expected.json")
    return None


def checks_for(ctx: FileCtx) -> list[Check]:
    url = BASE + ctx.relpath
    if "/invalid/" in ctx.relpath:
        ours = ctx.ours(url)
        return [Check("must fail to parse", ours.error is not None, OURS, f"ours parsed it: {len(ours.entries)} entries")]
    path = expected_path(ctx)
    if path is None or not path.exists():
        return []
    data = json.loads(path.read_bytes())
    ours = ctx.ours(url)
    expected = to_expected(data)
    for (rel, name), (value, why) in OUR_RULES.items():
        if rel == ctx.relpath:
            _apply_rule(expected, name, value, f"[our rule: {why}]")
    return common.compare_feed(expected, ours, url)


def _apply_rule(expected: ExpFeed, name: str, value: Any, label: str) -> None:
    if name == "feed.author":
        expected.author, expected.email, expected.author_label = value, None, label
        return
    index, _, field = name.removeprefix("entries[").partition("].")
    item = (expected.items or [])[int(index)]
    setattr(item, field, value)
    item.labels[field] = label


def to_expected(data: dict[str, Any]) -> ExpFeed:
    if "feedType" in data:
        return _universal(data)
    if "entries" in data or str(data.get("version", "")).startswith(("0.3", "1.0")) and "items" not in data:
        return _atom(data)
    if "home_page_url" in data or "feed_url" in data or str(data.get("version", "")).startswith("https://jsonfeed"):
        return _jsonfeed(data)
    return _rss(data)


def _person(value: Any) -> tuple[str | None, str | None]:
    if isinstance(value, dict):
        return value.get("name"), value.get("email")
    if isinstance(value, str):
        return value, None
    return None, None


def _finish(item: ExpItem) -> ExpItem:
    item.anonymous = common.is_anonymous(item)
    return item


def _universal(data: dict[str, Any]) -> ExpFeed:
    name, email = _person(data.get("author") or common.first(data.get("authors")))
    items = []
    for raw in data.get("items") or []:
        author, author_email = _person(raw.get("author") or common.first(raw.get("authors")))
        cover = (raw.get("image") or {}).get("url") if isinstance(raw.get("image"), dict) else None
        if cover is None:
            cover = next((e.get("url") for e in raw.get("enclosures") or [] if str(e.get("type", "")).startswith("image/")), None)
        items.append(_finish(ExpItem(
            title=raw.get("title"),
            url=raw.get("link"),
            guid=raw.get("guid"),
            author=author,
            email=author_email,
            published=raw.get("publishedParsed"),
            updated=raw.get("updatedParsed"),
            categories=raw.get("categories"),
            contents=[c for c in (raw.get("description"), raw.get("content")) if c],
            cover=cover,
        )))
    return ExpFeed(title=data.get("title"), language=data.get("language"), author=name, email=email, items=items)


def _atom(data: dict[str, Any]) -> ExpFeed:
    name, email = _person(common.first(data.get("authors")))
    items = []
    for raw in data.get("entries") or []:
        author, author_email = _person(common.first(raw.get("authors")))
        link = next((l.get("href") for l in raw.get("links") or [] if l.get("rel", "alternate") == "alternate" and l.get("href")), None)
        content = raw.get("content")
        contents = [raw.get("summary"), content.get("value") if isinstance(content, dict) else content]
        items.append(_finish(ExpItem(
            title=raw.get("title"),
            url=link,
            guid=raw.get("id"),
            author=author,
            email=author_email,
            published=raw.get("publishedParsed"),
            updated=raw.get("updatedParsed"),
            categories=[c.get("term") for c in raw.get("categories") or [] if c.get("term")] or None,
            contents=[c for c in contents if isinstance(c, str) and c],
        )))
    return ExpFeed(title=data.get("title"), language=data.get("language"), author=name, email=email, items=items)


def _rss(data: dict[str, Any]) -> ExpFeed:
    items = []
    for raw in data.get("items") or []:
        guid = raw.get("guid")
        enclosure = raw.get("enclosure") or {}
        dc = raw.get("dcExt") or {}
        author = raw.get("author") or common.first(dc.get("creator")) or (raw.get("itunesExt") or {}).get("author")
        categories = [c.get("value") for c in raw.get("categories") or [] if c.get("value")] + list(dc.get("subject") or [])
        items.append(_finish(ExpItem(
            title=raw.get("title"),
            url=raw.get("link"),
            guid=guid.get("value") if isinstance(guid, dict) else guid,
            author=author,
            published=raw.get("pubDateParsed") or _dc_date(dc),
            categories=categories or None,
            contents=[c for c in (raw.get("description"), raw.get("content")) if c],
            cover=enclosure.get("url") if str(enclosure.get("type", "")).startswith("image/") else None,
        )))
    editor = data.get("managingEditor")
    name, email = (None, None)
    if editor:
        name, email = editor, None
    return ExpFeed(title=data.get("title"), language=data.get("language"), author=name, email=email, items=items)


def _dc_date(dc: dict[str, Any]) -> Any:
    return common.first(dc.get("date"))


def _jsonfeed(data: dict[str, Any]) -> ExpFeed:
    items = []
    for raw in data.get("items") or []:
        author, _ = _person(raw.get("author") or common.first(raw.get("authors")))
        items.append(_finish(ExpItem(
            title=raw.get("title"),
            url=raw.get("url") or raw.get("external_url"),
            guid=str(raw["id"]) if raw.get("id") is not None else None,
            author=author,
            published=raw.get("date_published"),
            updated=raw.get("date_modified"),
            categories=raw.get("tags"),
            # content_html and content_text are two forms of one body (JSON Feed 1.1): the HTML one when given
            contents=[c for c in (raw.get("content_html") or raw.get("content_text"), raw.get("summary")) if c],
            cover=raw.get("image"),
        )))
    name, _ = _person(data.get("author") or common.first(data.get("authors")))
    return ExpFeed(title=data.get("title"), language=data.get("language"), author=name, items=items)
