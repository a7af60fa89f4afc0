"""rbren/rss-parser's outputs (`input/X` + `output/X.json`), in the common shape.

Read as reference values, not as a schema: title, link, guid, isoDate, the
author (dc:creator or author), categories, the body (`content`, Atom `summary`),
an image enclosure as the cover, the feed's title and language.
"""

from __future__ import annotations

import json
from typing import Any

from tests.conformance import common
from tests.conformance.common import ExpFeed, ExpItem
from tests.conformance.model import OURS, Check, FileCtx

BASE = "https://corpus.example/"
# How upstream serves these two (the README): the charset comes from HTTP.
HEADERS = {
    "encoding/rss-parser/input/encoding.rss": {"Content-Type": "text/xml; charset=latin1"},
    "encoding/rss-parser/input/latin2.rss": {"Content-Type": "application/xml; charset=iso-8859-2"},
}
MUST_FAIL = {"real-world/rss-parser/input/unrecognized.rss"}
# Our rule: rss-parser (xml2js) re-serializes Atom type="xhtml" content with its text and
# elements regrouped, so its words are right and their order is not.
XHTML_REORDERED = {"real-world/rss-parser/input/reddit-home.rss"}
_WORDS = "[our rule: upstream's xhtml re-serialization reorders text; same words]"


def checks_for(ctx: FileCtx) -> list[Check]:
    if "/input/" not in ctx.relpath:
        return []
    url = BASE + ctx.relpath
    ours = ctx.ours(url, HEADERS.get(ctx.relpath))
    if ctx.relpath in MUST_FAIL:
        return [Check("must fail: not RSS", ours.error is not None, OURS, f"ours parsed {len(ours.entries)} entries")]
    output = ctx.path.parent.parent / "output" / (ctx.path.stem + ".json")
    if not output.exists():
        return []
    raw = output.read_bytes()
    try:
        data = json.loads(raw)
    except UnicodeDecodeError:
        data = json.loads(raw.decode("latin-1"))  # output/encoding.json is itself Latin-1 (README)
    expected = to_expected(data["feed"])
    if ctx.relpath in XHTML_REORDERED:
        for item in expected.items or []:
            item.content_as_words = True
            item.labels.update({f"content[{n}]": _WORDS for n in range(len(item.contents))})
    return common.compare_feed(expected, ours, url)


def _terms(categories: Any) -> list[str] | None:
    out = []
    for category in categories or []:
        if isinstance(category, str):
            out.append(category)
        elif isinstance(category, dict) and isinstance(category.get("_"), str):
            out.append(category["_"])
    return out or None


def to_expected(feed: dict[str, Any]) -> ExpFeed:
    items = []
    for raw in feed.get("items") or []:
        enclosure = raw.get("enclosure") or {}
        has_media = any(k in raw for k in ("mediaContent", "media:content", "mediaThumbnail", "media:thumbnail", "media:group"))
        cover = enclosure.get("url") if str(enclosure.get("type", "")).startswith("image/") and not has_media else None
        item = ExpItem(
            title=raw.get("title"),
            url=raw.get("link"),
            guid=raw.get("guid") if isinstance(raw.get("guid"), str) else raw.get("id"),
            author=raw.get("creator") or raw.get("author") if isinstance(raw.get("creator") or raw.get("author"), str) else None,
            published=raw.get("isoDate"),
            categories=_terms(raw.get("categories")),
            contents=[c for c in (raw.get("content"), raw.get("summary")) if isinstance(c, str) and c],
            cover=cover,
        )
        item.anonymous = common.is_anonymous(item)
        items.append(item)
    return ExpFeed(title=feed.get("title"), language=feed.get("language"), items=items)
