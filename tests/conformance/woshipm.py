"""rsshub-woshipm: the hand-made RSSHub feeds of woshipm.com, whose EXPECTATIONS.json values are exact.

Each feed file is checked on its own (titles, guids, canonical links, authors from
the channel title, categories, UTC dates, language corrected from `en` to zh, the
HTML cleaned of the donation widget). The EXPECTATIONS.json file carries the
deduplication scenario: both feeds ingested, in order, into one temporary database
through the real store; exactly 7 unique entries, the repeated items updated or
merged, no tracking parameters left.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

from tests.conformance import compare as C
from tests.conformance.model import FETCHED_AT, OURS, Check, FileCtx, Ours

FOLDER = "rsshub-woshipm"
ORDER = ("woshipm-user_article-788034.xml", "woshipm-popular-daily.xml")
_SVG_PATH_DATA = re.compile(r"\b[Mm]\s?-?\d+(?:\.\d+)?[ ,]-?\d+")


def _facts(root: Path) -> dict[str, Any]:
    return json.loads((root / FOLDER / "EXPECTATIONS.json").read_bytes())


def checks_for(ctx: FileCtx) -> list[Check]:
    facts = _facts(ctx.root)
    name = ctx.path.name
    if name == "EXPECTATIONS.json":
        return store_checks(ctx.root, facts)
    spec = facts["files"].get(name)
    if spec is None:
        return []
    ours = ctx.ours(spec["self_link"])
    return feed_checks(spec, ours, facts.get("html") or {})


def feed_checks(spec: dict[str, Any], ours: Ours, html_facts: dict[str, Any]) -> list[Check]:
    out = [
        C.check("feed.title", C.same_title(ours.title, spec["feed_title"])),
        Check("entry count", len(ours.entries) == spec["item_count"], OURS, f"ours {len(ours.entries)}; {ours.error}"),
    ]
    for index, item in enumerate(spec["items"]):
        entry = ours.entries[index] if index < len(ours.entries) else None
        label = f"entries[{index}]"
        if entry is None:
            out.append(Check(f"{label} exists", False, OURS, "ours has no such entry"))
            continue
        out += [
            Check(f"{label}.title", entry.title == item["title"], OURS, f"ours {entry.title!r}"),
            Check(f"{label}.guid", entry.guid == item["guid"], OURS, f"ours {entry.guid!r}"),
            Check(f"{label}.url (canonical link)", entry.url == item["canonical_link"], OURS, f"ours {entry.url!r}"),
            Check(f"{label}.author", entry.author == item["author"], OURS, f"ours {entry.author!r}"),
            Check(f"{label}.categories", list(entry.categories) == item["categories"], OURS, f"ours {list(entry.categories)!r}"),
            Check(f"{label}.published_at", entry.published_at == item["published_utc"], OURS, f"ours {entry.published_at!r} from {item['pubDate']!r}"),
            Check(f"{label}.language is zh (declared {spec['language_declared']})", (entry.language or "").startswith("zh"), OURS, f"ours {entry.language!r}"),
        ]
        out += _html_checks(label, entry, html_facts)
    return out


def _html_checks(label: str, entry: Any, facts: dict[str, Any]) -> list[Check]:
    """The suggested normalisation: widget gone, body and images kept, a clean plain-text summary."""
    html = entry.content_html
    widget = [w for w in ("support-author", "button--pay", "<button", "<svg", "赞赏") if w in html]
    imgs = re.findall(r"<img\b[^>]*>", html)
    summary = entry.summary or ""
    return [
        Check(f"{label} html: donation widget removed", not widget, OURS, f"left: {widget}"),
        Check(f"{label} html: <h2> and <img src> kept", "<h2>" in html and bool(imgs) and all(" src=" in i for i in imgs), OURS, html[:200]),
        Check(f"{label} html: images carry referrerpolicy=no-referrer", bool(imgs) and all('referrerpolicy="no-referrer"' in i for i in imgs), OURS, f"{imgs[:2]!r}"),
        Check(f"{label} html: safe", not C.unsafe_parts(html), OURS, f"{C.unsafe_parts(html)}"),
        Check(f"{label} summary: no 赞赏, no SVG path data", "赞赏" not in summary and not _SVG_PATH_DATA.search(summary), OURS, summary[:200]),
        Check(f"{label} bio: #专栏作家# moved out of the body", "#专栏作家#" not in entry.content_text and bool(entry.author_bio), OURS, f"bio {entry.author_bio!r}"),
    ]


def store_checks(root: Path, facts: dict[str, Any]) -> list[Check]:
    """Both feeds into one temporary database through the real store, in the stated order."""
    from crawler.items import EntryItem
    from crawler.outcome import feed_context
    from crawler.parsers.feed import parse_feed
    from pipelines.stages import normalize_entry
    from pipelines.store import CrawlCounts, Store

    dedup = facts["dedup"]
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "feeds.db")
        try:
            for name in ORDER:
                url = facts["files"][name]["self_link"]
                feed_id, _ = store.add_feed(url)
                parsed = parse_feed((root / FOLDER / name).read_bytes(), url, {"Content-Type": "application/rss+xml"})
                ctx = feed_context({"id": feed_id, "url": url, "categories": "[]"}, parsed, FETCHED_AT)
                items = [EntryItem(raw=raw, context=ctx, entry=normalize_entry(raw, ctx)) for raw in parsed.entries]
                store.write_batch(items, CrawlCounts())
            rows = [dict(r) for r in store.db.query("SELECT url, guid, title, author, language, published_at FROM entries")]
        finally:
            store.close()
    by_url = {r["url"]: r for r in rows}
    out = [Check("store: unique entries after both feeds", len(rows) == dedup["unique_entries_after_both"], OURS, f"ours {len(rows)}: {sorted(by_url)}")]
    for repeated in dedup["repeated_items"]:
        matching = [r for r in rows if r["guid"] == repeated["guid"] or r["url"] == repeated["guid"]]
        out.append(Check(f"store: one row for {repeated['guid']}", len(matching) == 1, OURS, f"{len(matching)} rows"))
        wanted_title = re.search(r"title must be \"([^\"]+)\"", repeated["note"])
        if wanted_title:
            title = matching[0]["title"] if matching else None
            out.append(Check(f"store: {repeated['guid']} updated to the newer title", title == wanted_title.group(1), OURS, f"stored {title!r}"))
    tracking = dedup["tracking_params"]
    out.append(Check("store: tracking parameters removed from the link", tracking["canonical_link"] in by_url and not any("utm_" in (u or "") for u in by_url), OURS, f"{sorted(by_url)}"))
    expected = {i["canonical_link"]: i for f in facts["files"].values() for i in f["items"]}
    wrong_author = [(u, r["author"]) for u, r in by_url.items() if u in expected and r["author"] != expected[u]["author"]]
    out.append(Check("store: authors (from the items and the channel title pattern)", not wrong_author, OURS, f"{wrong_author}"))
    wrong_lang = [(u, r["language"]) for u, r in by_url.items() if not (r["language"] or "").startswith("zh")]
    out.append(Check("store: every entry's language is zh (the `en` declaration corrected)", not wrong_lang, OURS, f"{wrong_lang}"))
    wrong_date = [(u, r["published_at"]) for u, r in by_url.items() if u in expected and r["published_at"] != expected[u]["published_utc"]]
    out.append(Check("store: published_at in UTC", not wrong_date, OURS, f"{wrong_date}"))
    return out
