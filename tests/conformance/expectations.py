"""`EXPECTATIONS.json` folders (feedjira, RSParser, miniflux, Rodel.Reader), translated into checks on our output.

`upstream` facts become checks on the fields we keep; free-text `notes` that state
a checkable fact about a kept field are written out here, one function per file.
`derived` facts (raw <item>/<entry> counts, JSON item counts, a BOM, whitespace
before `<?xml`, strict-XML failures) become "parses, with that many entries" checks.
rsshub-woshipm has its own module (it needs the store).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from tests.conformance import common
from tests.conformance import compare as C
from tests.conformance.common import ExpFeed, ExpItem
from tests.conformance.model import OURS, Check, FileCtx, Ours

BASE = "https://corpus.example/"
_FEED_ROOTS = {"rss", "feed", "rdf:RDF", "RDF"}


@lru_cache(maxsize=16)
def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_bytes())


def folder_root(ctx: FileCtx) -> Path | None:
    """The folder holding the EXPECTATIONS.json that describes this file."""
    for parent in ctx.path.parents:
        if (parent / "EXPECTATIONS.json").exists():
            return parent
        if parent == ctx.root:
            break
    return None


def checks_for(ctx: FileCtx) -> list[Check]:
    root = folder_root(ctx)
    if root is None or ctx.path.name == "EXPECTATIONS.json":
        return []
    key = ctx.path.relative_to(root).as_posix()
    facts = _load(root / "EXPECTATIONS.json").get("files", {}).get(key)
    if facts is None:
        return []
    upstream = facts.get("upstream") or {}
    derived = facts.get("derived") or {}
    url = upstream.get("base_url") or upstream.get("feed_url") or BASE + ctx.relpath
    headers = {"Content-Type": upstream["content_type"]} if upstream.get("content_type") else {}
    ours = ctx.ours(url, headers)
    out = _derived(derived, ours)
    folder = ctx.relpath.split("/")[1] if "/" in ctx.relpath else ""
    handler = _opml if ctx.relpath.startswith("opml/") else _HANDLERS.get(folder)
    if handler:
        out += handler(ctx, key, upstream, ours, url)
    return out


# --- derived facts ---------------------------------------------------------------------------


def _derived(derived: dict[str, Any], ours: Ours) -> list[Check]:
    out = []
    root = derived.get("root_element")
    if root in _FEED_ROOTS:
        detail = f"ours: {ours.error}"
        if derived.get("whitespace_before_xml_declaration"):
            out.append(Check("derived: parses despite whitespace before <?xml", ours.error is None, OURS, detail))
        if derived.get("bom"):
            out.append(Check("derived: parses despite the BOM", ours.error is None, OURS, detail))
        strict = derived.get("stdlib_strict_xml_parse")
        if strict and strict != "ok":
            out.append(Check("derived: parses although strict XML fails", ours.error is None, OURS, f"{detail}; strict: {strict}"))
        raw = (derived.get("raw_item_elements") or 0) + (derived.get("raw_entry_elements") or 0)
        out.append(Check("derived: entry count = raw <item>/<entry> elements", len(ours.entries) == raw, OURS, f"ours {len(ours.entries)}, raw {raw}; {detail}"))
    elif str(derived.get("format", "")).startswith("jsonfeed"):
        count = derived.get("item_count")
        out.append(Check("derived: JSON Feed item count", len(ours.entries) == count, OURS, f"ours {len(ours.entries)}, expected {count}; error {ours.error}"))
    elif derived.get("json_valid") is False:
        out.append(Check("derived: invalid JSON fails cleanly", ours.error is not None, OURS, f"ours parsed {len(ours.entries)} entries"))
    return out


# --- feedjira --------------------------------------------------------------------------------


def _feedjira(ctx: FileCtx, key: str, up: dict[str, Any], ours: Ours, url: str) -> list[Check]:
    if not up:
        return []
    out: list[Check] = []
    feed = ExpFeed(
        title=up.get("title"),
        language=up.get("language"),
        author=up.get("author") or up.get("itunes_author"),
    )
    first = up.get("first_entry") or {}
    if up.get("entry_count") is not None or first:
        items: list[ExpItem] = []
        if first:
            item = ExpItem(
                title=first.get("title"),
                url=first.get("link"),
                guid=first.get("id"),
                author=first.get("author") or first.get("itunes_author"),
                updated=first.get("updated"),
                categories=first.get("categories"),
                contents=[c for c in (first.get("summary"),) if c],
            )
            if first.get("content_equals_file"):
                item.contents.append(ctx.sibling(first["content_equals_file"]).read_text("utf-8"))
            items.append(item)
        out += _first_and_count(feed, items, up.get("entry_count"), ours, url)
    else:
        out += common.compare_feed(feed, ours, url)
    if up.get("title_stripped"):
        out.append(C.check("feed.title (stripped)", C.same_title(ours.title, up["title_stripped"])))
    last = up.get("last_entry") or {}
    if last.get("id_stripped"):
        mine = ours.entries[-1].guid if ours.entries else None
        out.append(Check("last entry guid (stripped)", (mine or "").strip() == last["id_stripped"], OURS, f"ours {mine!r}"))
    for spec in up.get("entries") or []:  # Permalinks.xml
        index = spec["index"]
        entry = ours.entries[index] if index < len(ours.entries) else None
        want = C.canonical_url(spec["link"], url) if spec["link"] else None
        mine = entry.url if entry else "<no entry>"
        out.append(Check(f"entries[{index}].url ({spec['why']})", mine == want, OURS, f"ours {mine!r}, expected {want!r}"))
    special = _FEEDJIRA_NOTES.get(key)
    if special:
        out += special(ours)
    return out


def _first_and_count(feed: ExpFeed, items: list[ExpItem], count: int | None, ours: Ours, url: str) -> list[Check]:
    """Feed-level checks, the entry count when stated, and the first entry's fields."""
    out = [c for c in common.compare_feed(feed, ours, url) if c.name.startswith("feed.")]
    if count is not None:
        out.append(Check("entry count", len(ours.entries) == count, OURS, f"ours {len(ours.entries)}, expected {count}; {ours.error}"))
    for item in items:
        out += common.compare_item(item, ours.entries[0] if ours.entries else None, url, "entries[0]")
    return out


def _atom_detected(ours: Ours) -> list[Check]:
    version = ours.feed.version if ours.feed else None
    return [Check("read as Atom", bool(version and version.startswith("atom")), OURS, f"ours version {version!r}, error {ours.error}")]


def _eleven_images(ours: Ours) -> list[Check]:
    # The corpus note says "first entry"; in the file the entry with 11 images is the second
    # ("Kickstarting failure", 11 <img> in its <content>): the fact checked is that none is doubled.
    counts = [e.content_html.count("<img") for e in ours.entries]
    return [Check("the entry with 11 <img> keeps 11: content not duplicated", bool(counts) and max(counts) == 11, OURS, f"ours {counts}")]


_FEEDJIRA_NOTES: dict[str, Callable[[Ours], list[Check]]] = {
    "AtomFeedWithSpacesAroundEquals.xml": _atom_detected,
    "DuplicateContentAtomFeed.xml": _eleven_images,
}


# --- RSParser --------------------------------------------------------------------------------


def _rsparser(ctx: FileCtx, key: str, up: dict[str, Any], ours: Ours, url: str) -> list[Check]:
    out: list[Check] = []
    detected = up.get("detected_type")
    if detected == "atom":
        out += _atom_detected(ours)
    elif detected == "rss":
        version = ours.feed.version if ours.feed else ""
        out.append(Check("read as RSS", version.startswith("rss"), OURS, f"ours version {version!r}, error {ours.error}"))
    elif detected == "jsonfeed":
        version = ours.feed.version if ours.feed else ""
        out.append(Check("read as JSON Feed", version.startswith("json"), OURS, f"ours version {version!r}, error {ours.error}"))
    elif detected and "NOT JSON Feed" in detected:
        out.append(Check("not read as a JSON Feed [our rule: RSS-in-JSON is not a format we read]", ours.error is not None, OURS, f"ours: {ours.feed.version if ours.feed else None}"))
        return out  # its feed_language is RSS-in-JSON's, which we do not read
    elif detected == "not a feed":
        out.append(Check("not a feed", ours.error is not None, OURS, f"ours parsed {len(ours.entries)} entries"))
    if up.get("feed_title"):
        out.append(C.check("feed.title", C.same_title(ours.title, up["feed_title"])))
    if up.get("feed_language"):
        mine = (ours.feed.language or "") if ours.feed else ""
        out.append(Check("feed.language", mine.lower() == up["feed_language"].lower(), OURS, f"ours {mine!r}"))
    if up.get("item_count") is not None:
        out.append(Check("item count", len(ours.entries) == up["item_count"], OURS, f"ours {len(ours.entries)}; {ours.error}"))
    every = up.get("every_item") or {}
    if every:
        out += _every_item(every, ours)
    if up.get("feed_authors"):
        name = C.split_author(ours.feed.author)[0] if ours.feed and ours.feed.author else None
        out.append(Check("feed author (the first)", name == up["feed_authors"][0], OURS, f"ours {name!r}"))
    for guid, authors in (up.get("item_authors_by_id") or {}).items():
        entry = next((e for e in ours.entries if e.guid == guid), None)
        want = authors[0] if authors else up["feed_authors"][0]
        rule = "" if authors else " [our rule: an entry without an author takes the feed's]"
        mine = entry.author if entry else "<no entry>"
        out.append(Check(f"author of {guid!r} (the first){rule}", mine == want, OURS, f"ours {mine!r}, expected {want!r}"))
    special = _RSPARSER_NOTES.get(key)
    if special:
        out += special(ours)
    if ctx.relpath.startswith("encoding/") and up.get("declared_encoding"):
        out.append(_decoded_text(ctx, ours, "gb18030" if up["declared_encoding"].lower() == "gb2312" else up["declared_encoding"]))
        out.append(Check("every entry has HTML content", bool(ours.entries) and all(e.content_html for e in ours.entries), OURS, f"{len(ours.entries)} entries"))
    return out


def _every_item(every: dict[str, Any], ours: Ours) -> list[Check]:
    entries = ours.entries
    out = []
    if every.get("has_url"):
        out.append(Check("every entry has a url", bool(entries) and all(e.url for e in entries), OURS, f"{sum(1 for e in entries if not e.url)} without"))
    prefix = every.get("unique_id_prefix")
    if prefix:
        bad = [e.guid for e in entries if not (e.guid or "").startswith(prefix)]
        out.append(Check(f"every guid starts with {prefix}", bool(entries) and not bad, OURS, f"{bad[:3]!r}"))
    if every.get("authors"):
        out.append(Check("every entry has an author", bool(entries) and all(e.author for e in entries), OURS, f"{sum(1 for e in entries if not e.author)} without"))
    if every.get("has_date_published"):
        out.append(Check("every entry has a date", bool(entries) and all(e.published_at for e in entries), OURS, f"{[e.published_raw for e in entries if not e.published_at][:3]!r}"))
    if every.get("language"):
        bad = [e.language for e in entries if not (e.language or "").startswith(every["language"])]
        out.append(Check(f"every entry's language is {every['language']}", bool(entries) and not bad, OURS, f"{bad[:3]!r}"))
    return out


def _titles_kept(ours: Ours) -> list[Check]:
    return [Check("every entry has its title", bool(ours.entries) and all(e.title for e in ours.entries), OURS, "")]


def _no_author_title(ours: Ours) -> list[Check]:
    banned = {"Product Manager, Office of the CTO", "Developer Programs Engineer", "Product Director"}
    bad = [e.title for e in ours.entries if e.title in banned]
    return [Check("no entry title is an author's job title", bool(ours.entries) and not bad, OURS, f"{bad!r}")]


def _guids_not_links(ours: Ours) -> list[Check]:
    guids = [e.guid for e in ours.entries]
    from pipelines.metadata import normalize_url

    from_guid = [e.url for e in ours.entries if e.guid and e.url and e.url == normalize_url(e.guid)]
    return [
        Check("every entry keeps a unique id", bool(guids) and all(guids) and len(set(guids)) == len(guids), OURS, f"{guids[:3]!r}"),
        Check("no url taken from a guid that is not a URL", not from_guid, OURS, f"{from_guid[:3]!r}"),
    ]


def _fails_cleanly(ours: Ours) -> list[Check]:
    return [Check("truncated JSON fails cleanly", ours.error is not None, OURS, f"ours parsed {len(ours.entries)} entries")]


_RSPARSER_NOTES: dict[str, Callable[[Ours], list[Check]]] = {
    "aktuality.rss": _titles_kept,
    "cloudblog.rss": _no_author_title,
    "monkeydom.rss": _guids_not_links,
    "allthis-partial.json": _fails_cleanly,
}


# --- miniflux --------------------------------------------------------------------------------


def _miniflux(ctx: FileCtx, key: str, up: dict[str, Any], ours: Ours, url: str) -> list[Check]:
    out: list[Check] = []
    if key.endswith(".html"):
        return _html_page(ctx, up, url)
    if up.get("channel_title"):
        out.append(C.check("feed.title", C.same_title(ours.title, up["channel_title"])))
    if up.get("decoded_contains"):
        text = C.folded(" ".join(_all_text(ours)))
        out.append(Check("decoded text contains", C.folded(up["decoded_contains"]) in text, OURS, f"ours {text[:200]!r}; {ours.error}"))
    if up.get("item_count") is not None:
        out.append(Check("item count", len(ours.entries) == up["item_count"], OURS, f"ours {len(ours.entries)}"))
    if up.get("first_item_title"):
        mine = ours.entries[0].title if ours.entries else None
        out.append(C.check("entries[0].title", C.same_title(mine, up["first_item_title"])))
    if up.get("declared_encoding"):
        out.append(_decoded_text(ctx, ours, up["declared_encoding"]))
    if "Not a feed" in str(up.get("notes", "")):
        out.append(Check("not a feed", ours.error is not None, OURS, f"ours parsed {len(ours.entries)} entries"))
    return out


def _html_page(ctx: FileCtx, up: dict[str, Any], url: str) -> list[Check]:
    """A web page: the text our article-page path decodes from it (decoding is what upstream tests here).

    These pages are a few characters long, so extract_article rightly finds no article in
    them; the check reads the page the way extract_article does before it looks for one.
    """
    from crawler.parsers.article import ExtractError, _parse_page

    headers = {"content-type": up["content_type"]} if up.get("content_type") else {}
    try:
        text = _parse_page(ctx.body, headers).text_content()
    except ExtractError as exc:
        text = f"<ExtractError {exc}>"
    want = up.get("decoded_contains") or ""
    return [Check("article page decoded text contains", C.folded(want) in C.folded(text), OURS, f"ours {text[:200]!r}")]


def _all_text(ours: Ours) -> list[str]:
    parts = [ours.title or ""]
    for e in ours.entries:
        parts += [e.title, e.content_text, e.summary or "", e.author or "", *e.categories]
    return parts


def _decoded_text(ctx: FileCtx, ours: Ours, codec: str) -> Check:
    ok, detail = C.decoded_text_kept(ctx.body, codec, _all_text(ours), ours.error)
    return Check(f"text decoded as {codec} is what we store", ok, OURS, detail)


# --- the rest ----------------------------------------------------------------------------------


def _opml(ctx: FileCtx, key: str, up: dict[str, Any], ours: Ours, url: str) -> list[Check]:
    from crawler.feedlist import FeedListError, load_feed_list

    try:
        specs = load_feed_list(ctx.path)
    except FeedListError as exc:
        return [Check("OPML loads", False, OURS, str(exc))]
    return [
        Check("OPML loads feeds", bool(specs), OURS, ""),
        Check("every feed gets a title (from text= when title= is missing)", bool(specs) and all(s.name for s in specs), OURS, f"{[s.url for s in specs if not s.name][:3]!r}"),
    ]


def _html_detection(ctx: FileCtx, key: str, up: dict[str, Any], ours: Ours, url: str) -> list[Check]:
    return [Check("a web page is not a feed", ours.error is not None, OURS, f"ours parsed {len(ours.entries)} entries")]


_HANDLERS = {
    "feedjira": _feedjira,
    "rsparser": _rsparser,
    "miniflux": _miniflux,
    "rodel-reader-zh": lambda *args: [],
    "rsparser-html": _html_detection,
}
