"""lemon24/reader's expectations (`X` + `X.expected.json`, transcribed from its Python companions), in the common shape.

The feed is loaded as if fetched over http from BASE, so `{url_base}` and `{rel_base}`
are both the folder's URL and `_conditional` parts "when the feed URL starts with
'http'" apply.
"""

from __future__ import annotations

import json
from typing import Any

from tests.conformance import common
from tests.conformance.common import ExpFeed, ExpItem
from tests.conformance.model import Check, FileCtx

BASE = "https://corpus.example/"


def checks_for(ctx: FileCtx) -> list[Check]:
    if ctx.relpath.endswith(".expected.json"):
        return []
    path = ctx.sibling(ctx.path.name + ".expected.json")
    if not path.exists():
        return []
    url = BASE + ctx.relpath
    url_base = url.rsplit("/", 1)[0] + "/"
    text = path.read_text("utf-8").replace("{url_base}", url_base).replace("{rel_base}", url_base)
    data = _resolve(json.loads(text))
    return common.compare_feed(to_expected(data), ctx.ours(url), url)


def _resolve(value: Any) -> Any:
    """Drop the transcription's own keys and apply `_conditional` elements (the http case)."""
    if isinstance(value, dict):
        return {k: _resolve(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        out: list[Any] = []
        for element in value:
            if isinstance(element, dict) and "_conditional" in element:
                out.extend(_resolve(element.get("value") or []))
            else:
                out.append(_resolve(element))
        return out
    return value


_ONE_BODY = "[our rule: an entry keeps one body, the HTML one, else the longest]"


def _the_body(bodies: list[dict[str, Any]]) -> dict[str, Any] | None:
    html = [b for b in bodies if "html" in str(b.get("type") or "")]
    candidates = html or bodies
    return max(candidates, key=lambda b: len(b["value"]), default=None)


def to_expected(data: dict[str, Any]) -> ExpFeed:
    feed = data.get("feed") or {}
    author = common.first(feed.get("authors")) or {}
    items = []
    for raw in data.get("entries") or []:
        person = common.first(raw.get("authors")) or {}
        bodies = [c for c in raw.get("content") or [] if c.get("value")]
        body = _the_body(bodies)
        contents = [raw.get("summary"), body.get("value") if body else None]
        cover = next((e.get("href") for e in raw.get("enclosures") or [] if str(e.get("type") or "").startswith("image/")), None)
        item = ExpItem(
            title=raw.get("title"),
            url=raw.get("link"),
            guid=raw.get("id"),
            author=person.get("name"),
            email=person.get("email"),
            published=raw.get("published"),
            updated=raw.get("updated"),
            contents=[c for c in contents if c],
            cover=cover,
        )
        if len(bodies) > 1:
            item.labels.update({"content[0]": _ONE_BODY, "content[1]": _ONE_BODY})
        item.anonymous = common.is_anonymous(item)
        items.append(item)
    return ExpFeed(title=feed.get("title"), author=author.get("name"), email=author.get("email"), items=items)
