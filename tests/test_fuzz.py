"""Property tests: parse_feed + normalize_entry let only FeedError escape; no title breaks an export.

Derandomized and with modest example counts, so the suite stays reproducible and well under a minute.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from crawler.items import FeedContext
from crawler.parsers.feed import FeedError, parse_feed
from crawler.parsers.xmlguard import XmlRejected, defuse_xml
from pipelines.exports import export_atom, export_csv, neutralize_cell, xml_text
from pipelines.exports_markdown import STYLES, MarkdownOptions, candidate_paths, export_markdown, render_post, safe_relpath
from pipelines.stages import normalize_entry
from pipelines.store import open_db

URL = "http://feeds.example/feed"
CONTEXT = FeedContext(feed_id=1, feed_url=URL, fetched_at="2024-06-01T00:00:00Z", timezone="Asia/Shanghai")
FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])

CONTENT_TYPES = st.sampled_from(
    ["", "application/rss+xml", "application/atom+xml; charset=utf-8", "text/xml", "text/html", "application/json",
     "application/feed+json", "text/xml; charset=gb2312", "application/xml; charset=utf-16", "image/png",
     "application/xml; charset=bogus-charset", "text/plain; charset=utf-7", "application/xml; charset=cp037"]
)


def check(body: bytes, content_type: str) -> None:
    """The property: entries that normalize and can be stored, or a FeedError with a message."""
    try:
        feed = parse_feed(body, URL, {"content-type": content_type} if content_type else {})
    except FeedError as exc:
        assert str(exc)
        return
    for raw in feed.entries:
        entry = normalize_entry(raw, CONTEXT)
        assert entry.id
        for value in (entry.title, entry.content_html, entry.content_text, entry.summary, entry.author, entry.guid, entry.url):
            if value is not None:
                value.encode("utf-8")  # the store writes UTF-8: a lone surrogate would fail the whole batch


# Text that exercises XML: markup characters, entity and character references, CDATA ends,
# non-BMP and bidi characters, controls, and a few CJK characters like the feeds we read.
XML_TEXT = st.lists(
    st.one_of(
        st.sampled_from(list("<>&;\"'=/#x[]!?-") + ["&amp;", "&lt;", "&#0;", "&#xD800;", "&#x1F600;", "&nbsp;", "]]>", "<![CDATA[", "<!--", "\u202e", "\ufeff", "\x00", "\x0b"]),
        st.characters(codec="utf-8"),
        st.sampled_from(list("产品经理的运营笔记")),
        st.sampled_from(["<b>", "</b>", "<script>alert(1)</script>", "<a href='javascript:x'>", "<p>", "&#60;"]),
    ),
    max_size=25,
).map("".join)


def _element(name: str, text: str) -> str:
    return f"<{name}>{text}</{name}>"


@st.composite
def rss_documents(draw: Any) -> bytes:
    items = []
    for _ in range(draw(st.integers(0, 4))):
        parts = [
            _element("title", draw(XML_TEXT)),
            _element("link", draw(st.sampled_from(["http://example.com/a", "javascript:alert(1)", "/rel", "", "http://[::1]/x", "http://例子.测试/路径"]))),
            _element("guid", draw(XML_TEXT)),
            _element("pubDate", draw(st.sampled_from(["Mon, 01 Jan 2024 10:00:00 GMT", "2024-13-45", "3小时前", "", "0", "9" * 30]))),
            _element("description", draw(XML_TEXT)),
            _element("category", draw(XML_TEXT)),
        ]
        items.append("<item>" + "".join(draw(st.permutations(parts))[: draw(st.integers(0, len(parts)))]) + "</item>")
    doctype = draw(st.sampled_from(["", '<!DOCTYPE rss [<!ENTITY e "entity text">]>', "<!DOCTYPE rss>", '<!DOCTYPE rss [<!ENTITY % p "x">]>']))
    use = "&e;" if "ENTITY e" in doctype else ""
    channel = _element("title", draw(XML_TEXT) + use) + _element("ttl", draw(st.sampled_from(["60", "", "-5", "9" * 50, "\u00b2"])))
    text = f"<?xml version='1.0' encoding='utf-8'?>{doctype}<rss version='2.0'><channel>{channel}{''.join(items)}</channel></rss>"
    body = text.encode("utf-8", "surrogatepass")
    cut = draw(st.one_of(st.none(), st.integers(0, len(body))))
    return body if cut is None else body[:cut]


@st.composite
def atom_documents(draw: Any) -> bytes:
    entries = "".join(
        "<entry>"
        + _element("id", draw(XML_TEXT))
        + _element("title", draw(XML_TEXT)).replace("<title>", f"<title type='{draw(st.sampled_from(['text', 'html', 'xhtml']))}'>")
        + f"<link rel='alternate' href='{draw(st.sampled_from(['http://example.com/x', '', 'data:text/html,x']))}'/>"
        + _element("updated", draw(st.sampled_from(["2024-06-01T00:00:00Z", "bogus", ""])))
        + f"<content type='{draw(st.sampled_from(['html', 'xhtml', 'text']))}' xml:base='{draw(st.sampled_from(['http://example.com/', 'javascript:', '']))}'>"
        + draw(XML_TEXT) + "</content>"
        + "</entry>"
        for _ in range(draw(st.integers(0, 3)))
    )
    text = f"<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'><title>{draw(XML_TEXT)}</title>{entries}</feed>"
    return text.encode("utf-8", "surrogatepass")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
ITEM_KEYS = st.sampled_from(
    ["id", "url", "external_url", "title", "content_html", "content_text", "summary", "image", "banner_image",
     "date_published", "date_modified", "authors", "author", "tags", "language", "attachments"]
)


@st.composite
def json_feeds(draw: Any) -> bytes:
    items = draw(st.lists(st.dictionaries(ITEM_KEYS, JSON_VALUES, max_size=8), max_size=4))
    feed: Any = {"version": draw(st.sampled_from(["https://jsonfeed.org/version/1.1", "https://jsonfeed.org/version/1", 1, None])), "items": items}
    feed.update(draw(st.dictionaries(st.sampled_from(["title", "home_page_url", "authors", "language", "items"]), JSON_VALUES, max_size=3)))
    return json.dumps(feed, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")


@FUZZ
@given(body=st.binary(max_size=2048), content_type=CONTENT_TYPES)
def test_any_bytes(body, content_type):
    check(body, content_type)


@FUZZ
@given(body=rss_documents(), content_type=CONTENT_TYPES)
def test_rss_shaped_documents(body, content_type):
    check(body, content_type)


@FUZZ
@given(body=atom_documents(), content_type=CONTENT_TYPES)
def test_atom_shaped_documents(body, content_type):
    check(body, content_type)


@FUZZ
@given(body=json_feeds())
def test_json_feeds_of_any_shape(body):
    check(body, "application/feed+json")


SEED = (
    b"<?xml version='1.0' encoding='utf-8'?><!DOCTYPE rss [<!ENTITY t \"Tom &amp; Jerry\">]><rss version='2.0'><channel>"
    b"<title>&t;</title><item><title>\xe4\xba\xa7\xe5\x93\x81 &t;</title><link>http://example.com/1</link>"
    b"<description><![CDATA[<p>body</p>]]></description><pubDate>Mon, 01 Jan 2024 10:00:00 GMT</pubDate></item></channel></rss>"
)


@FUZZ
@given(
    edits=st.lists(st.tuples(st.integers(0, len(SEED)), st.integers(0, 8), st.binary(max_size=8)), min_size=1, max_size=6),
    content_type=CONTENT_TYPES,
)
def test_mutations_of_a_real_shaped_feed(edits, content_type):
    body = SEED
    for position, delete, insert in edits:
        body = body[:position] + insert + body[position + delete :]
    check(body, content_type)


@FUZZ
@given(body=st.one_of(st.binary(max_size=1024), rss_documents()))
def test_defuse_xml_raises_only_xml_rejected(body):
    try:
        out = defuse_xml(body)
    except XmlRejected:
        return
    assert isinstance(out, bytes)
    assert defuse_xml(out) == out  # defusing twice changes nothing more


# --- exports: no title can escape the folder or break front matter, CSV or Atom --------------------


EXPORTS = settings(max_examples=60, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
# Titles that attack file names and the formats around them, mixed with anything Unicode has.
HOSTILE_TITLE_PIECES = [
    "../", "..\\", "/", "\\", "/etc/passwd", "C:\\Windows", "C:", "\x00", "CON", "con.md", "aux", "LPT1", "nul", "..", ".",
    "\u2215", "\u2044", "\uff0f", "\uff3c", "\uff0e\uff0e", "\u0338", "\u20e5", "\u202e", "\u200b", " ", "\t", "\n", "\r",
    "---", "\n---\n", "...", "#", ":", ": ", "'", '"', "\\x", "|", ">", "- ", "&", "*a", "!tag", "%", "@", "`", "{", "}", "[",
    "]", "=cmd|' /C calc'!A0", "+1", "-1", "@SUM(1)", "\ufeff", "\x85", "\u2028", "\u2029", "\x7f", "\x1b[31m",
    "</title>", "<![CDATA[", "]]>", "&amp;", "&#0;", "产品经理", "😀", "a" * 300, "é", "e\u0301",
]
TITLES = st.lists(st.one_of(st.sampled_from(HOSTILE_TITLE_PIECES), st.text(max_size=8)), max_size=12).map("".join)


def _row(title: str, n: int = 0) -> dict:
    return {"id": f"id-{n}", "title": title, "url": "http://example.com/p", "content_html": "<p>body</p>",
            "categories": [title], "author": title, "published_at": "2024-06-01T00:00:00Z", "first_seen_at": "2024-06-01T00:00:00Z"}


def _storable(title: str) -> str:
    return title.encode("utf-8", "replace").decode("utf-8")  # stored text never holds lone surrogates


@EXPORTS
@given(title=TITLES, style=st.sampled_from(STYLES))
def test_markdown_file_names_stay_in_the_folder(title, style):
    root = Path("/export/root")
    for rel in list(candidate_paths(_row(_storable(title)), style))[:3]:
        path = safe_relpath(root, rel)
        assert path is not None, rel
        parts = PurePosixPath(rel).parts
        assert ".." not in parts and not rel.startswith("/") and "\\" not in rel and "\x00" not in rel
        name = parts[-1]
        assert len(name.encode("utf-8")) <= 255
        stem = name[:-3].split(".")[0].lower()
        assert stem not in {"con", "prn", "aux", "nul", *{f"com{i}" for i in range(10)}, *{f"lpt{i}" for i in range(10)}}
        assert not re.search(r'[<>:"|?*\x00-\x1f]', name) and not name.endswith((" ", "."))
        assert unicodedata.normalize("NFKC", name) == name or all(c not in name for c in "\u2215\u2044\uff0f\uff3c")


@EXPORTS
@given(title=TITLES, style=st.sampled_from(STYLES))
def test_front_matter_holds_any_title(title, style):
    title = _storable(title)
    post = render_post(_row(title), style)
    assert post.startswith("---\n")
    front, sep, _ = post[4:].partition("\n---\n")
    assert sep, post
    data = yaml.safe_load(front)
    assert isinstance(data, dict) and data["title"] == title


@contextmanager
def _database(titles: list[str]) -> Iterator[tuple[Any, Path]]:
    with tempfile.TemporaryDirectory(prefix="feedloom-fuzz-") as folder:
        db = open_db(Path(folder) / "feeds.db")
        try:
            for n, title in enumerate(titles):
                db["entries"].insert({**_row(title, n), "categories": json.dumps([title], ensure_ascii=False), "content_text": "body"})
            yield db, Path(folder)
        finally:
            db.conn.close()


@EXPORTS
@given(titles=st.lists(TITLES.map(_storable), min_size=1, max_size=4))
def test_csv_and_atom_hold_any_title(titles):
    with _database(titles) as (db, _):
        _check_csv_and_atom(db, titles)


def _check_csv_and_atom(db: Any, titles: list[str]) -> None:
    out = io.BytesIO()
    assert export_csv(db, out) == len(titles)
    rows = list(csv.DictReader(io.StringIO(out.getvalue().decode("utf-8"), newline="")))
    assert sorted(r["title"] for r in rows) == sorted(neutralize_cell(t) for t in titles)
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r"))
    atom = io.BytesIO()
    export_atom(db, atom)
    tree = etree.fromstring(atom.getvalue())  # well-formed whatever the titles
    ns = {"a": "http://www.w3.org/2005/Atom"}
    assert sorted(t.text or "" for t in tree.findall("a:entry/a:title", ns)) == sorted(xml_text(t) for t in titles)


@settings(max_examples=25, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(titles=st.lists(TITLES.map(_storable), min_size=1, max_size=6), style=st.sampled_from(STYLES))
def test_markdown_export_writes_only_inside_its_folder(titles, style):
    with _database(titles) as (db, folder):
        target = folder / "out"
        report = export_markdown(db, target, options=MarkdownOptions(style=style))
        written = [p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("feeds.db")]
        assert all(target.resolve() in p.resolve().parents for p in written)
        posts = [p for p in written if p.suffix == ".md"]
        assert len(posts) == len(titles) == report.total
