"""Tests for pipelines.exports, pipelines.exports_markdown and the `feedloom export` command."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import types
import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import feedparser
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from sqlite_utils import Database

from crawler.cli_export import export
from crawler.feedlist import load_feed_list
from pipelines import exports
from pipelines.exports import ExportError, ExportFilter
from pipelines.exports_markdown import (
    MANIFEST_NAME,
    SLUG_MAX_BYTES,
    MarkdownOptions,
    candidate_paths,
    export_markdown,
    render_post,
    slugify,
    yaml_quote,
)
from pipelines.store import open_db

ATOM = "{http://www.w3.org/2005/Atom}"
LONG_ZH = "".join("产品经理的增长方法论"[i % 10] for i in range(400))

FEEDS = [
    {"id": 1, "url": "https://www.pm-columns.example.cn/feed", "name": "产品专栏", "categories": ["产品经理", "最新文章"],
     "site_url": "https://www.pm-columns.example.cn/", "language": "zh-CN"},
    {"id": 2, "url": "https://letters.example.org/atom.xml", "name": "Growth Letters", "categories": ["english"],
     "site_url": "https://letters.example.org/", "language": "en"},
    {"id": 3, "url": "https://odd.example.net/rss", "name": None, "categories": ["a,b", "plain"],
     "site_url": None, "language": None},
]

# (key, feeds it was seen in, fields); ids are derived from the key.
ENTRIES: list[tuple[str, list[int], dict[str, Any]]] = [
    ("zh", [1], {"title": "跨境电商的下一站：从复制到共建", "author": "孟老师", "published_at": "2024-03-01T02:00:00Z",
                 "updated_at": "2024-03-02T08:30:00Z", "categories": ["产品经理", "最新文章", "电商"],
                 "cover_image": "https://img.example.cn/cover.jpg", "language": "zh-CN",
                 "content_html": "<p>电商的故事，从<b>复制</b>开始。</p>", "content_text": "电商的故事，从复制开始。"}),
    ("en", [2], {"title": "Why retention beats acquisition", "author": "Ada Byron", "published_at": "2024-02-15T09:00:00Z",
                 "categories": ["english", "Growth"], "language": "en",
                 "content_html": "<p>Keep the users you have. {{< shortcode >}} {% raw %}</p>",
                 "content_text": "Keep the users you have."}),
    ("en-twin", [2], {"title": "Why retention beats acquisition", "author": "Ada Byron",
                      "published_at": "2024-02-14T09:00:00Z", "categories": ["english"], "language": "en",
                      "content_html": "<p>The sequel.</p>", "content_text": "The sequel."}),
    ("front", [1, 2], {"title": "---\ntitle: x", "author": "Mallory", "published_at": "2024-01-20T00:00:00Z",
                       "categories": ["产品经理", "yaml"], "content_html": "<p>---</p><p>not front matter</p>",
                       "content_text": "--- not front matter"}),
    ("formula", [2], {"title": '=HYPERLINK("http://evil.example","click")', "author": "+Eve",
                      "published_at": "2024-01-19T00:00:00Z", "categories": ["-minus", "@at"],
                      "summary": "\tindented", "content_html": "<p>=1+1</p>", "content_text": "=1+1"}),
    ("traversal", [3], {"title": "../../etc/passwd", "author": "root", "published_at": "2024-01-18T00:00:00Z",
                        "categories": ["plain"], "content_html": "<p>nothing here</p>", "content_text": "nothing here"}),
    ("con", [3], {"title": "CON", "author": "Dos", "published_at": "2024-01-17T00:00:00Z", "categories": [],
                  "content_html": "<p>device</p>", "content_text": "device"}),
    ("long", [1], {"title": LONG_ZH, "author": "长标题", "published_at": "2024-01-16T00:00:00Z",
                   "categories": ["产品经理"], "language": "zh-CN", "content_html": "<p>长</p>", "content_text": "长"}),
    ("control", [2], {"title": "bell\x07 nul\x00 tab\t odd\ufffe end", "author": "Ctrl",
                      "published_at": "2024-01-15T00:00:00Z", "categories": ["odd\x01cat"],
                      "content_html": "<p>body\x0b with \ufffe junk</p>", "content_text": "body with junk"}),
    ("quotes", [2], {"title": 'He said: "yes" # not a comment \\ ok', "author": "Q: A",
                     "published_at": "2024-01-14T00:00:00Z", "categories": ["it's"], "content_html": "<p>q</p>",
                     "content_text": "q"}),
    ("slashes", [2], {"title": "／etc∕passwd＼x⧸y", "author": None, "published_at": "2024-01-13T00:00:00Z",
                      "categories": [], "content_html": "<p>s</p>", "content_text": "s"}),
    ("undated", [3], {"title": "", "author": None, "published_at": None, "url": None, "categories": [],
                      "content_html": "<p>no date, no title, no link</p>", "content_text": "no date, no title, no link"}),
]


def entry_id(key: str) -> str:
    return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


def build_db(path: Path) -> Database:
    db = open_db(path)
    for feed in FEEDS:
        db["feeds"].insert({**feed, "categories": json.dumps(feed["categories"], ensure_ascii=False)})
    for key, feed_ids, fields in ENTRIES:
        row = {
            "id": entry_id(key), "url": f"https://example.org/posts/{key}", "guid": f"guid-{key}",
            "summary": None, "cover_image": None, "language": None, "word_count": len(fields["content_text"]),
            "reading_minutes": 1, "content_hash": hashlib.sha1(fields["content_html"].encode()).hexdigest(),
            "identity": f"url:{key}", "feed_id": feed_ids[0], "first_seen_at": "2024-04-01T00:00:00Z",
            "last_seen_at": "2024-04-02T00:00:00Z", "last_changed_at": "2024-04-01T00:00:00Z", "revision_count": 0,
        }
        row.update(fields)
        row["categories"] = json.dumps(row["categories"], ensure_ascii=False)
        db.conn.execute(
            f"INSERT INTO entries ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})", list(row.values())
        )
        for feed_id in feed_ids:
            db.conn.execute(
                "INSERT INTO entry_sightings (entry_id, feed_id, first_seen_at, last_seen_at) VALUES (?, ?, ?, ?)",
                [row["id"], feed_id, "2024-04-01T00:00:00Z", "2024-04-02T00:00:00Z"],
            )
    return db


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return build_db(tmp_path / "t.db")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """The markdown output folder (beside, not around, the database)."""
    return tmp_path / "site"


def db_rows(db: Database) -> list[dict[str, Any]]:
    rows = [dict(r) for r in db.query("SELECT * FROM entries ORDER BY published_at DESC, id")]
    for row in rows:
        row["categories"] = json.loads(row["categories"])
    return rows


def dump(func: Any, db: Database, *args: Any, **kwargs: Any) -> bytes:
    out = io.BytesIO()
    func(db, out, *args, **kwargs)
    return out.getvalue()


def ids_for(db: Database, filters: ExportFilter) -> list[str]:
    return [row["id"] for row in exports.iter_entries(db, filters)]


def parse_iso(text: str | None) -> datetime | None:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) if text else None


# -- selecting ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "keys"),
    [
        (ExportFilter(since="2024-02-01"), ["zh", "en", "en-twin"]),
        (ExportFilter(until="2024-01-14"), ["quotes", "slashes"]),  # a bare date includes the whole day
        (ExportFilter(until="2024-01-14T00:00:00Z"), ["quotes", "slashes"]),
        (ExportFilter(until="2024-01-13T23:59:59Z"), ["slashes"]),
        (ExportFilter(since="2024-02-15T17:00:00+08:00", until="2024-02-15"), ["en"]),
        (ExportFilter(feeds=("3",)), ["traversal", "con", "undated"]),
        (ExportFilter(feeds=("https://www.pm-columns.example.cn/feed",)), ["zh", "front", "long"]),
        (ExportFilter(feeds=("1", "3")), ["zh", "front", "traversal", "con", "long", "undated"]),
        (ExportFilter(categories=("growth",)), ["en"]),  # any case
        (ExportFilter(categories=("电商", "yaml")), ["zh", "front"]),
        (ExportFilter(categories=("x') OR 1=1 --",)), []),
        (ExportFilter(author="ada byron"), ["en", "en-twin"]),
        (ExportFilter(author="' OR '1'='1"), []),
        (ExportFilter(limit=2), ["zh", "en"]),
        (ExportFilter(limit=0), []),
        (ExportFilter(feeds=("2",), categories=("english",), limit=1), ["en"]),
    ],
)
def test_filters_select_entries(db: Database, filters: ExportFilter, keys: list[str]) -> None:
    assert ids_for(db, filters) == [entry_id(k) for k in keys]


def test_entries_come_newest_first_undated_last(db: Database) -> None:
    ids = ids_for(db, ExportFilter())
    assert ids == [row["id"] for row in db_rows(db)]
    assert ids[-1] == entry_id("undated")


@pytest.mark.parametrize(("query", "keys"), [("retention", ["en", "en-twin"]), ("复制", ["zh"]), ("100%", []), ("KEEP users", ["en"])])
def test_search_falls_back_to_like(db: Database, monkeypatch: pytest.MonkeyPatch, query: str, keys: list[str]) -> None:
    monkeypatch.setitem(sys.modules, "pipelines.search", None)  # as if the search module did not exist
    assert ids_for(db, ExportFilter(search=query)) == [entry_id(k) for k in keys]


def test_search_through_the_full_text_index(db: Database) -> None:
    pytest.importorskip("pipelines.search")
    assert ids_for(db, ExportFilter(search="retention")) == [entry_id("en"), entry_id("en-twin")]
    assert ids_for(db, ExportFilter(search="retention", limit=1)) == [entry_id("en")]


def test_search_uses_the_search_module_page_by_page(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    wanted = [entry_id(k) for k in ("con", "zh", "long")]
    calls: list[tuple[int, int]] = []

    def search_entries(db: Database, query: str, limit: int = 20, offset: int = 0) -> list[dict[str, Any]]:
        calls.append((limit, offset))
        hits = [{"id": i} for i in wanted] * 400  # more than a page, repeats included
        return hits[offset:offset + limit]

    monkeypatch.setitem(sys.modules, "pipelines.search", types.SimpleNamespace(search_entries=search_entries))
    assert ids_for(db, ExportFilter(search="anything")) == [entry_id(k) for k in ("zh", "con", "long")]
    assert len(calls) == 2


@pytest.mark.parametrize("bad", [ExportFilter(since="last tuesday"), ExportFilter(until="2024-13-01"), ExportFilter(feeds=("99",)),
                                 ExportFilter(feeds=("https://nowhere.example/feed",))])
def test_bad_filters_are_export_errors(db: Database, bad: ExportFilter) -> None:
    with pytest.raises(ExportError):
        ids_for(db, bad)


# -- JSON Lines, CSV ---------------------------------------------------------


def test_jsonl_round_trip(db: Database) -> None:
    lines = dump(exports.export_jsonl, db).decode("utf-8").splitlines()
    assert [json.loads(line) for line in lines] == db_rows(db)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("=SUM(A1)", "'=SUM(A1)"), ("+1", "'+1"), ("-2", "'-2"), ("@cmd", "'@cmd"), ("\tx", "'\tx"), ("\rx", "'\rx"),
     ("plain", "plain"), ("a=b", "a=b"), ("", ""), (None, None), (-3, -3)],
)
def test_neutralize_cell(value: Any, expected: Any) -> None:
    assert exports.neutralize_cell(value) == expected


def test_csv_round_trip(db: Database) -> None:
    data = dump(exports.export_csv, db)
    assert not data.startswith(b"\xef\xbb\xbf")
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    header = next(reader)
    rows = db_rows(db)
    assert header == list(rows[0])
    got = list(reader)
    assert len(got) == len(rows)
    for cells, row in zip(got, rows):
        for name, cell in zip(header, cells):
            value = row[name]
            if name == "categories":
                value = "; ".join(value)
            expected = "" if value is None else str(value)
            if expected.startswith(("=", "+", "-", "@", "\t", "\r")):
                expected = "'" + expected
            assert cell == expected, name


def test_csv_neutralises_the_formula_title(db: Database) -> None:
    text = dump(exports.export_csv, db, ExportFilter(feeds=("2",))).decode("utf-8")
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(text, newline=""))}
    row = rows[entry_id("formula")]
    assert row["title"] == "'" + '=HYPERLINK("http://evil.example","click")'
    assert row["author"] == "'+Eve"
    assert row["categories"] == "'-minus; @at"
    assert rows[entry_id("front")]["title"] == "'---\ntitle: x"


def test_csv_bom_for_excel(db: Database) -> None:
    data = dump(exports.export_csv, db, bom=True)
    assert data.startswith(b"\xef\xbb\xbfid,url,")
    assert data.decode("utf-8-sig").count("\r\n") >= len(ENTRIES) + 1


# -- Parquet -----------------------------------------------------------------


def test_parquet_round_trip(db: Database, tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "e.parquet"
    with open(path, "wb") as out:
        assert exports.export_parquet(db, out) == len(ENTRIES)
    table = pq.read_table(path)
    schema = table.schema
    assert schema.field("published_at").type == pa.timestamp("ms", tz="UTC")
    assert schema.field("first_seen_at").type == pa.timestamp("ms", tz="UTC")
    assert schema.field("categories").type == pa.list_(pa.string())
    assert schema.field("word_count").type == pa.int32()
    assert schema.field("feed_id").type == pa.int64()
    assert schema.field("title").type == pa.string()
    for got, row in zip(table.to_pylist(), db_rows(db), strict=True):
        for name, value in row.items():
            if name.endswith("_at"):
                value = parse_iso(value)
            assert got[name] == value, name


def test_parquet_is_written_in_row_groups(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    monkeypatch.setattr(exports, "PARQUET_ROW_GROUP", 5)
    path = tmp_path / "e.parquet"
    with open(path, "wb") as out:
        exports.export_parquet(db, out)
    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [5, 5, 2]


def test_parquet_without_pyarrow_says_how_to_install(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ExportError, match=r"pip install 'feedloom\[parquet\]'"):
        exports.export_parquet(db, io.BytesIO())


# -- Atom --------------------------------------------------------------------


def test_atom_round_trip_through_feedparser(db: Database) -> None:
    data = dump(exports.export_atom, db, title="我的合集", self_url="https://me.example/all.atom")
    parsed = feedparser.parse(data)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert parsed.feed.title == "我的合集"
    rows = db_rows(db)
    assert len(parsed.entries) == len(rows)
    for got, row in zip(parsed.entries, rows):
        assert got.title == exports.xml_text(row["title"]).strip()
        assert got.id == f"urn:feedloom:entry:{row['id']}"
        if row["url"]:
            assert got.link == row["url"]
        if row["published_at"]:
            assert datetime(*got.published_parsed[:6], tzinfo=UTC) == parse_iso(row["published_at"])
        updated = row["updated_at"] or row["published_at"] or row["first_seen_at"]
        assert datetime(*got.updated_parsed[:6], tzinfo=UTC) == parse_iso(updated)
        assert [t.term for t in got.get("tags", [])] == [exports.xml_text(c) for c in row["categories"]]
        assert got.content[0].type == "text/html"


def test_atom_has_what_the_spec_requires(db: Database) -> None:
    root = etree.fromstring(dump(exports.export_atom, db))
    assert root.tag == f"{ATOM}feed"
    for tag in ("title", "id", "updated", "author"):
        assert root.find(f"{ATOM}{tag}") is not None, tag
    assert root.find(f"{ATOM}link[@rel='self']") is not None
    # The feed is as new as its newest entry: the output depends on the data, not the clock.
    assert root.findtext(f"{ATOM}updated") == "2024-04-01T00:00:00Z"
    entries = root.findall(f"{ATOM}entry")
    assert len(entries) == len(ENTRIES)
    for node in entries:
        for tag in ("title", "id", "updated", "content"):
            assert node.find(f"{ATOM}{tag}") is not None, tag
        assert node.find(f"{ATOM}id").text.startswith("urn:feedloom:entry:")
    ids = [n.findtext(f"{ATOM}id") for n in entries]
    assert len(set(ids)) == len(ids)


def test_atom_drops_characters_xml_forbids(db: Database) -> None:
    data = dump(exports.export_atom, db, ExportFilter(feeds=("2",)))
    text = data.decode("utf-8")
    assert "\x07" not in text and "\x00" not in text and "\ufffe" not in text and "\x0b" not in text
    root = etree.fromstring(data)
    titles = [n.findtext(f"{ATOM}title") for n in root.iter(f"{ATOM}entry")]
    assert "bell nul tab\t odd end" in titles


def test_atom_of_nothing_is_still_valid(db: Database) -> None:
    parsed = feedparser.parse(dump(exports.export_atom, db, ExportFilter(limit=0)))
    assert not parsed.bozo
    assert parsed.entries == []
    assert parsed.feed.updated == "1970-01-01T00:00:00Z"


# -- OPML --------------------------------------------------------------------


def test_opml_round_trip_through_import(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "feeds.opml"
    path.write_bytes(dump(exports.export_opml, db))
    specs = load_feed_list(path)
    assert [s.url for s in specs] == [f["url"] for f in FEEDS]
    assert [s.name for s in specs] == ["产品专栏", "Growth Letters", "https://odd.example.net/rss"]
    assert [list(s.categories) for s in specs] == [["产品经理", "最新文章"], ["english"], ["a b", "plain"]]
    root = etree.fromstring(path.read_bytes())
    assert root.get("version") == "2.0"


def test_opml_filters_feeds_and_refuses_entry_filters(db: Database) -> None:
    root = etree.fromstring(dump(exports.export_opml, db, ExportFilter(categories=("ENGLISH",))))
    assert [o.get("xmlUrl") for o in root.iter("outline")] == ["https://letters.example.org/atom.xml"]
    with pytest.raises(ExportError, match="--since"):
        dump(exports.export_opml, db, ExportFilter(since="2024-01-01"))


# -- every single-file format --------------------------------------------------


@pytest.mark.parametrize("name", ["jsonl", "csv", "parquet", "atom", "opml"])
def test_same_database_same_bytes(db: Database, name: str) -> None:
    func = getattr(exports, f"export_{name}")
    assert dump(func, db) == dump(func, db)


def test_atomic_output_leaves_an_identical_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "out" / "a.jsonl"
    with exports.atomic_output(path) as out:
        out.write(b"same\n")
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    with exports.atomic_output(path) as out:
        out.write(b"same\n")
    assert path.stat().st_mtime_ns == 1_000_000_000
    with pytest.raises(RuntimeError), exports.atomic_output(path) as out:
        out.write(b"half")
        raise RuntimeError("interrupted")
    assert path.read_bytes() == b"same\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.jsonl"]


# -- Markdown: names ---------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("Why retention beats acquisition", "why-retention-beats-acquisition"),
        ("跨境电商的下一站：从复制到共建", "跨境电商的下一站-从复制到共建"),
        ("../../etc/passwd", "etc-passwd"),
        ("／etc∕passwd＼x⧸y", "etc-passwd-x-y"),  # full-width and look-alike slashes
        ("Ｆｕｌｌ　Ｗｉｄｔｈ ①", "full-width-1"),  # NFKC
        ("a\u0338b c\u20e5", "a-b-c"),  # combining slash overlays
        ("trailing dots... ", "trailing-dots"),
        ("nul\x00byte\u202eevil", "nul-byte-evil"),
        ("---\ntitle: x", "title-x"),
        ("Café Ölçü", "café-ölçü"),
        ("", ""),
        ("!!!", ""),
    ],
)
def test_slugify(title: str, slug: str) -> None:
    assert slugify(title) == slug


def test_slugify_limits_bytes_on_a_character_boundary() -> None:
    slug = slugify(LONG_ZH)
    assert len(slug.encode("utf-8")) <= SLUG_MAX_BYTES
    assert LONG_ZH.startswith(slug)
    assert len(slugify("a" * 400, max_bytes=10)) == 10


@settings(max_examples=300)
@given(st.text())
def test_slugify_only_ever_gives_safe_names(text: str) -> None:
    slug = slugify(text)
    assert slugify(slug) == slug
    assert len(slug.encode("utf-8", "surrogatepass")) <= SLUG_MAX_BYTES
    assert not slug.startswith("-") and not slug.endswith("-")
    assert all(unicodedata.category(ch)[0] in "LNM" or ch == "-" for ch in slug)
    assert unicodedata.normalize("NFKC", slug) == slug or any(unicodedata.category(ch)[0] == "M" for ch in slug)


@pytest.mark.parametrize("name", ["CON", "con", "Nul", "COM1", "lpt9", "aux", "PRN", "COM¹"])
def test_reserved_windows_names_get_a_suffix(name: str) -> None:
    first = next(candidate_paths({"id": "x", "title": name, "published_at": None}, "plain"))
    assert first.startswith(slugify(name) + "-")


@settings(max_examples=300)
@given(st.text(alphabet=st.characters(exclude_categories=("Cs",))))
def test_yaml_quote_round_trips_any_text(text: str) -> None:
    assert yaml.safe_load(f"k: {yaml_quote(text)}\nz: 1\n") == {"k": text, "z": 1}


# -- Markdown: posts ---------------------------------------------------------


def split_post(text: str) -> tuple[dict[str, Any], str]:
    assert text.startswith("---\n")
    head, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(head), body


def posts(folder: Path) -> dict[str, Path]:
    header, *lines = (folder / MANIFEST_NAME).read_text("utf-8").splitlines()
    assert json.loads(header)["feedloom_manifest"] == 1
    items = [json.loads(line) for line in lines]
    assert [i["id"] for i in items] == sorted(i["id"] for i in items)
    return {item["id"]: folder / item["path"] for item in items}


def mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("style", ["plain", "hexo", "hugo", "jekyll"])
def test_markdown_front_matter_round_trip(db: Database, tmp_path: Path, style: str) -> None:
    folder = tmp_path / "site"
    report = export_markdown(db, folder, options=MarkdownOptions(style=style))
    assert report.written == len(ENTRIES)
    files = posts(folder)
    assert len(files) == len(ENTRIES)
    rows = {row["id"]: row for row in db_rows(db)}
    for entry, path in files.items():
        row = rows[entry]
        meta, body = split_post(path.read_text("utf-8"))
        assert meta["title"] == row["title"]
        assert meta["categories"] == row["categories"]
        assert meta["comments"] is False
        assert meta["author"] == (row["author"] or {1: "产品专栏", 2: "Growth Letters", 3: ""}[row["feed_id"]])
        assert meta["headimg"] == meta["thumbnail"] == (row["cover_image"] or "")
        source = meta["source_url"] if style == "hexo" else meta["source"]
        assert source == (row["url"] or "")
        assert set(meta["tags"]) <= set(row["categories"])
        date = row["published_at"] or row["first_seen_at"]
        expected = {"plain": date, "hugo": date, "hexo": date.replace("T", " ")[:-1],
                    "jekyll": date.replace("T", " ")[:-1] + " +0000"}[style]
        assert meta["date"] == expected
        html = re.sub("[\x0b\ufffe]", "", row["content_html"])
        assert body.strip() in (html, html.replace("{{<", "{{&lt;"))
        assert path.resolve().is_relative_to(folder.resolve())
        assert len(path.name.encode("utf-8")) <= 255


def test_markdown_tags_are_the_articles_own_categories(db: Database, site: Path) -> None:
    export_markdown(db, site)
    meta, _ = split_post(posts(site)[entry_id("zh")].read_text("utf-8"))
    assert meta["categories"] == ["产品经理", "最新文章", "电商"]
    assert meta["tags"] == ["电商"]  # the other two are the feed's labels


@pytest.mark.parametrize(
    ("style", "folder", "keys"),
    [
        ("plain", "", {"layout", "draft"}),
        ("hexo", "source/_posts", {"updated", "disableNunjucks"}),
        ("hugo", "content/posts", {"lastmod", "draft", "images", "isCJKLanguage"}),
        ("jekyll", "_posts", {"layout", "last_modified_at", "render_with_liquid"}),
    ],
)
def test_markdown_style_layout(db: Database, site: Path, style: str, folder: str, keys: set[str]) -> None:
    export_markdown(db, site, ExportFilter(feeds=("1",)), MarkdownOptions(style=style))
    path = posts(site)[entry_id("zh")]
    assert path.parent == site / folder if folder else path.parent == site
    meta, _ = split_post(path.read_text("utf-8"))
    if style == "plain":
        assert not keys & set(meta)
        assert path.name == "跨境电商的下一站-从复制到共建.md"
        assert list(meta)[:4] == ["title", "categories", "tags", "headimg"]
    else:
        assert keys <= set(meta)
    if style == "jekyll":
        assert path.name == "2024-03-01-跨境电商的下一站-从复制到共建.md"
        assert meta["layout"] == "post"
    if style == "hugo":
        assert meta["draft"] is False and meta["lastmod"] == "2024-03-02T08:30:00Z"
    if style == "hexo":
        assert meta["updated"] == "2024-03-02 08:30:00"


def test_hugo_shortcodes_in_content_do_not_run(db: Database) -> None:
    row = next(r for r in exports.iter_entries(db, ExportFilter()) if r["id"] == entry_id("en"))
    assert "{{&lt; shortcode >}}" in render_post(row, "hugo")
    assert "{{< shortcode >}}" in render_post(row, "plain")


def test_markdown_names_are_safe_and_unique(db: Database, site: Path) -> None:
    export_markdown(db, site)
    files = posts(site)
    names = [p.name for p in files.values()]
    assert len({n.casefold() for n in names}) == len(names)
    assert files[entry_id("traversal")].name == "etc-passwd.md"
    assert files[entry_id("con")].name.startswith("con-") and files[entry_id("con")].name != "con.md"
    assert files[entry_id("en")].name == "why-retention-beats-acquisition.md"
    assert files[entry_id("en-twin")].name.startswith("why-retention-beats-acquisition-")
    assert files[entry_id("undated")].name.startswith("entry-")
    assert files[entry_id("slashes")].name == "etc-passwd-x-y.md"
    long_name = files[entry_id("long")].name
    assert len(long_name.encode("utf-8")) <= SLUG_MAX_BYTES + 3
    assert all(p.parent == site for p in files.values())
    assert sorted(p.name for p in site.iterdir()) == sorted(names + [MANIFEST_NAME])


def test_markdown_control_characters_survive_yaml(db: Database, site: Path) -> None:
    export_markdown(db, site)
    path = posts(site)[entry_id("control")]
    raw = path.read_bytes()
    assert b"\x00" not in raw and b"\x07" not in raw and b"\x0b" not in raw
    meta, body = split_post(raw.decode("utf-8"))
    assert meta["title"] == "bell\x07 nul\x00 tab\t odd\ufffe end"
    assert meta["categories"] == ["odd\x01cat"]
    assert "\ufffe" not in body


def test_markdown_rerun_touches_nothing(db: Database, site: Path) -> None:
    export_markdown(db, site)
    before = mtimes(site)
    report = export_markdown(db, site)
    assert (report.written, report.updated, report.unchanged) == (0, 0, len(ENTRIES))
    assert mtimes(site) == before


def test_markdown_changed_entry_rewrites_only_its_file_under_its_old_name(db: Database, site: Path) -> None:
    export_markdown(db, site)
    before = mtimes(site)
    old_path = posts(site)[entry_id("en")]
    db.execute("UPDATE entries SET title = ?, content_html = ? WHERE id = ?",
               ["A new title entirely", "<p>Revised.</p>", entry_id("en")])
    report = export_markdown(db, site)
    assert (report.written, report.updated) == (0, 1)
    after = mtimes(site)
    changed = {name for name in after if after[name] != before.get(name)}
    assert changed == {old_path.name, MANIFEST_NAME}
    meta, body = split_post(old_path.read_text("utf-8"))
    assert meta["title"] == "A new title entirely" and "Revised." in body


def test_markdown_never_removes_or_overwrites_user_files(db: Database, site: Path) -> None:
    site.mkdir()
    (site / "why-retention-beats-acquisition.md").write_text("my own post\n", "utf-8")
    (site / "notes.txt").write_text("notes\n", "utf-8")
    export_markdown(db, site)
    assert (site / "why-retention-beats-acquisition.md").read_text("utf-8") == "my own post\n"
    assert posts(site)[entry_id("en")].name.startswith("why-retention-beats-acquisition-")
    export_markdown(db, site, ExportFilter(limit=1), MarkdownOptions(prune=True))
    assert (site / "notes.txt").read_text("utf-8") == "notes\n"
    assert (site / "why-retention-beats-acquisition.md").exists()


def test_markdown_keeps_a_post_the_user_edited(db: Database, site: Path) -> None:
    export_markdown(db, site)
    path = posts(site)[entry_id("zh")]
    path.write_text(path.read_text("utf-8") + "\n<!-- my note -->\n", "utf-8")
    db.execute("UPDATE entries SET content_html = '<p>新版本</p>' WHERE id = ?", [entry_id("zh")])
    report = export_markdown(db, site)
    assert report.kept_edited == [path.name]
    assert path.read_text("utf-8").endswith("<!-- my note -->\n")


def test_markdown_prune_removes_only_our_unedited_posts(db: Database, site: Path) -> None:
    export_markdown(db, site)
    files = posts(site)
    edited = files[entry_id("con")]
    edited.write_text("edited\n", "utf-8")
    report = export_markdown(db, site, ExportFilter(feeds=("1",)), MarkdownOptions(prune=True))
    assert report.pruned == len(ENTRIES) - 3 - 1
    assert sorted(posts(site)) == sorted([entry_id("zh"), entry_id("front"), entry_id("long"), entry_id("con")])
    assert edited.read_text("utf-8") == "edited\n"


def test_markdown_adopts_files_of_an_interrupted_run(db: Database, site: Path) -> None:
    export_markdown(db, site)
    (site / MANIFEST_NAME).unlink()
    report = export_markdown(db, site)
    assert (report.written, report.unchanged) == (0, len(ENTRIES))
    assert not [p for p in site.iterdir() if "-" in p.stem and p.stem.rsplit("-", 1)[-1] == "2"]


def test_markdown_ignores_manifest_paths_that_escape(db: Database, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    lines = [{"feedloom_manifest": 1, "style": "plain"},
             {"id": entry_id("zh"), "path": "../escaped.md", "sha256": ""},
             {"id": entry_id("en"), "path": "/tmp/abs.md", "sha256": ""},
             {"id": entry_id("con"), "path": "a/../../b.md", "sha256": ""}]
    (folder / MANIFEST_NAME).write_text("".join(json.dumps(line) + "\n" for line in lines), "utf-8")
    export_markdown(db, folder)
    assert not (tmp_path / "escaped.md").exists()
    assert all(p.resolve().is_relative_to(folder.resolve()) for p in posts(folder).values())


def test_markdown_unreadable_manifest_is_an_error(db: Database, site: Path) -> None:
    site.mkdir()
    (site / MANIFEST_NAME).write_text("{not json\n", "utf-8")
    with pytest.raises(ExportError, match="unreadable manifest"):
        export_markdown(db, site)


def test_markdown_refuses_another_style_in_the_same_folder(db: Database, site: Path) -> None:
    export_markdown(db, site, options=MarkdownOptions(style="hugo"))
    with pytest.raises(ExportError, match="hugo"):
        export_markdown(db, site, options=MarkdownOptions(style="jekyll"))


def test_markdown_body_without_markdownify_is_a_clear_error(db: Database, site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "markdownify", None)
    with pytest.raises(ExportError, match="pip install markdownify"):
        export_markdown(db, site, options=MarkdownOptions(body="markdown"))
    assert not site.exists()


def test_markdown_body_converted(db: Database, site: Path) -> None:
    pytest.importorskip("markdownify")
    export_markdown(db, site, ExportFilter(feeds=("1",)), MarkdownOptions(body="markdown"))
    _, body = split_post(posts(site)[entry_id("zh")].read_text("utf-8"))
    assert "**复制**" in body and "<p>" not in body


# -- the command ---------------------------------------------------------------


def run(*args: str) -> Any:
    return CliRunner().invoke(export, list(args), catch_exceptions=False)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "atom", "opml"])
def test_cli_stdout_equals_file(db: Database, tmp_path: Path, fmt: str) -> None:
    dbfile = str(tmp_path / "t.db")
    extra = ["--self-url", "https://me.example/out.atom"] if fmt == "atom" else []
    result = run("--format", fmt, "--db", dbfile, *extra)
    assert result.exit_code == 0, result.output
    out = tmp_path / f"out.{fmt}"
    result2 = run("--format", fmt, "-o", str(out), "--db", dbfile, *extra)
    assert result2.exit_code == 0
    assert out.read_bytes() == result.stdout_bytes
    assert "exported" in result2.stderr


def test_cli_filters_and_markdown(db: Database, tmp_path: Path) -> None:
    dbfile = str(tmp_path / "t.db")
    result = run("--format", "jsonl", "--db", dbfile, "--feed", "2", "--category", "english", "--since", "2024-02-15")
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == [entry_id("en")]
    folder = tmp_path / "blog"
    result = run("--format", "markdown", "-o", str(folder), "--style", "hexo", "--db", dbfile)
    assert result.exit_code == 0, result.output
    assert f"{len(ENTRIES)} new" in result.stderr
    assert (folder / "source" / "_posts" / "etc-passwd.md").is_file()


def test_cli_parquet_file(db: Database, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "e.parquet"
    result = run("--format", "parquet", "-o", str(out), "--db", str(tmp_path / "t.db"), "--limit", "3")
    assert result.exit_code == 0
    assert pq.read_table(out).num_rows == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "jsonl", "--bom"], "--bom applies to --format csv only"),
        (["--format", "csv", "--style", "hugo"], "--style applies to --format markdown only"),
        (["--format", "jsonl", "--self-url", "x"], "--self-url applies to --format atom only"),
        (["--format", "markdown", "-o", "-"], "give a folder"),
        (["--format", "jsonl", "--since", "yesterday"], "not a date"),
        (["--format", "opml", "--author", "x"], "--author filters entries"),
        (["--format", "xml"], "Invalid value"),
    ],
)
def test_cli_errors(db: Database, tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(export, [*args, "--db", str(tmp_path / "t.db")])
    assert result.exit_code != 0
    assert message in result.output


def test_cli_unwritable_output_is_one_line(db: Database, tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    result = CliRunner().invoke(export, ["--format", "jsonl", "-o", str(tmp_path / "taken"), "--db", str(tmp_path / "t.db")])
    assert result.exit_code == 1
    assert "cannot write" in result.output and "Traceback" not in result.output


def test_cli_missing_database(tmp_path: Path) -> None:
    result = CliRunner().invoke(export, ["--format", "jsonl", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 1
    assert "no database" in result.output
    assert not (tmp_path / "none.db").exists()


def test_cli_parquet_without_pyarrow(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    result = CliRunner().invoke(export, ["--format", "parquet", "-o", str(tmp_path / "x.parquet"), "--db", str(tmp_path / "t.db")])
    assert result.exit_code == 1
    assert "pip install 'feedloom[parquet]'" in result.output
    assert not (tmp_path / "x.parquet").exists()


def test_cli_stops_quietly_when_the_reader_goes_away(db: Database, tmp_path: Path) -> None:
    body = "<p>" + "填充" * 2000 + "</p>"  # enough rows to overflow the pipe's buffer
    db.conn.executemany(
        "INSERT INTO entries (id, title, content_html, categories) VALUES (?, ?, ?, '[]')",
        [(f"bulk{i:04d}", f"bulk {i}", body) for i in range(200)],
    )
    code = "import sys; from crawler.cli_export import export; export.main(sys.argv[1:])"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--format", "jsonl", "--db", str(tmp_path / "t.db")],
        cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(10)
    proc.stdout.close()  # like `| head -c 10`
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, stderr
    assert "Traceback" not in stderr


def test_cli_is_a_click_command() -> None:
    assert isinstance(export, click.Command)
    assert "--format" in export.get_help(click.Context(export))


# -- the demo database -------------------------------------------------------


def test_demo_database_round_trips(demo_db: Path, tmp_path: Path) -> None:
    db = Database(sqlite3.connect(str(demo_db)))
    rows = db_rows(db)
    assert rows, "the demo crawl stored no entries"
    lines = dump(exports.export_jsonl, db).decode("utf-8").splitlines()
    assert [json.loads(line) for line in lines] == rows
    parsed = feedparser.parse(dump(exports.export_atom, db))
    assert not parsed.bozo
    assert [e.title for e in parsed.entries] == [exports.xml_text(r["title"]).strip() for r in rows]
    assert [e.get("link") for e in parsed.entries] == [r["url"] or None for r in rows]
    text = dump(exports.export_csv, db).decode("utf-8")
    assert [r["id"] for r in csv.DictReader(io.StringIO(text, newline=""))] == [r["id"] for r in rows]
    export_markdown(db, tmp_path / "md", options=MarkdownOptions(style="hugo"))
    titles = {split_post(p.read_text("utf-8"))[0]["title"] for p in posts(tmp_path / "md").values()}
    assert titles == {r["title"] for r in rows}
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "demo.parquet"
    with open(out, "wb") as handle:
        exports.export_parquet(db, handle)
    table = pq.read_table(out).to_pylist()
    assert [t["id"] for t in table] == [r["id"] for r in rows]
    assert [t["categories"] for t in table] == [r["categories"] for r in rows]
    assert [t["published_at"] for t in table] == [parse_iso(r["published_at"]) for r in rows]
