"""fastfeed.fast_parse against feedparser: whenever the fast path answers, its RawFeed is the one feedparser's path gives."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import crawler.parsers.feed as feed_module
from bench.generate import generate_corpus
from crawler.items import RawFeed
from crawler.parsers import fastfeed
from crawler.parsers.fastfeed import fast_parse
from crawler.parsers.feed import FeedError, parse_feed, parse_with_feedparser, prepare_xml
from crawler.parsers.jsonfeed import looks_like_json

URL = "https://columns.example/feed.xml"
NS = (
    'xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:media="http://search.yahoo.com/mrss/" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/" '
    'xmlns:atom="http://www.w3.org/2005/Atom"'
)


def both(raw: bytes, url: str = URL, headers: dict[str, str] | None = None) -> tuple[RawFeed | None, RawFeed]:
    """(the fast path's answer, feedparser's answer) for the same bytes, prepared once as parse_feed does."""
    body, prepared, doc_base = prepare_xml(raw, url, headers or {})
    return fast_parse(body, url, doc_base), parse_with_feedparser(body, url, prepared, doc_base)


def rss(items: str, channel: str = "<title>专栏</title><link>https://columns.example/</link>", root: str = "") -> bytes:
    return f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" {NS}{root}><channel>{channel}{items}</channel></rss>'.encode()


def atom(entries: str, head: str = "<title>Notes</title>", root: str = "") -> bytes:
    return f'<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom"{root}>{head}{entries}</feed>'.encode()


ACCEPTED = {
    "rss-chinese-cdata": rss(
        "<item><title>用户增长的三个误区</title><link>https://columns.example/p/1?utm_source=rss&amp;a=1</link>"
        "<description><![CDATA[<p>留存比拉新更重要。</p>]]></description>"
        "<content:encoded><![CDATA[<p>第一段：先看<b>留存</b>，再看拉新。</p><p>第二段。</p>]]></content:encoded>"
        '<guid isPermaLink="false">woshipm-10001</guid><pubDate>Mon, 06 May 2024 08:00:00 +0800</pubDate>'
        "<dc:creator>林晓</dc:creator><category>增长</category><category>运营</category><category>增长</category></item>",
        channel="<title>产品专栏</title><link>https://columns.example/</link><language>zh-cn</language><ttl>30</ttl>",
    ),
    "rss-entities-and-html-title": rss(
        "<item><title>Pricing &amp; packaging: &lt;b&gt;bold&lt;/b&gt; moves</title><link>https://columns.example/p/2</link>"
        "<description>&lt;p&gt;Short &amp;amp; sweet &#8212; a summary.&lt;/p&gt;</description>"
        "<author>ben@columns.example (Ben Ortiz)</author><guid>https://columns.example/p/2</guid>"
        '<category domain="https://columns.example/tags">Pricing</category>'
        '<enclosure url="https://img.columns.example/cover.jpg" length="1200" type="image/jpeg"/>'
        '<enclosure url="https://audio.columns.example/ep2.mp3" length="99" type="audio/mpeg"/>'
        '<media:thumbnail url="https://img.columns.example/thumb.png" width="120" height="80"/></item>'
    ),
    "rss-guid-before-link-and-media": rss(
        "<item><guid>https://columns.example/p/3</guid><title>Retention notes</title>"
        '<media:content url="https://img.columns.example/m.webp" medium="image"/>'
        "<description>Plain summary only.</description><comments>https://columns.example/p/3#c</comments></item>"
        "<item><title>Second</title><link>/relative/4</link><guid isPermaLink=\"true\">/relative/4</guid></item>",
        channel=(
            "<title>Growth &amp; Retention</title><link>https://columns.example/</link><description>About growth</description>"
            '<atom:link href="https://columns.example/feed.xml" rel="self" type="application/rss+xml"/>'
            "<managingEditor>editor@columns.example (The Editor)</managingEditor><generator>handmade 1.0</generator>"
            "<sy:updatePeriod>daily</sy:updatePeriod><sy:updateFrequency>4</sy:updateFrequency>"
            "<image><url>https://columns.example/logo.png</url><title>Logo</title><link>https://columns.example/</link></image>"
            "<category>Product</category>"
        ),
    ),
    "rss-xml-lang-and-mojibake": rss(
        "<item><title>CafÃ© talk</title><description>caf\u00e9 &#x93;quoted&#x94;</description><link>https://columns.example/5</link></item>",
        root=' xml:lang="en_GB"',
    ),
    "atom-html-content": atom(
        "<entry><id>tag:columns.example,2024:1</id><title type=\"html\">A &amp;lt;i&amp;gt;title&amp;lt;/i&amp;gt;</title>"
        '<link rel="alternate" type="text/html" href="https://columns.example/a/1"/>'
        '<link rel="enclosure" type="image/png" href="https://img.columns.example/a1.png"/>'
        "<published>2024-05-06T08:00:00+08:00</published><updated>2024-05-07T08:00:00Z</updated>"
        "<author><name>陈一鸣</name><email>chen@columns.example</email></author><author><name>Second Writer</name></author>"
        '<category term="电商"/><category term="Growth" label="Growth label"/><category label="Only label"/>'
        '<summary type="text">一句话摘要</summary><content type="html">&lt;p&gt;正文第一段。&lt;/p&gt;&lt;p&gt;第二段。&lt;/p&gt;</content></entry>',
        head='<id>tag:columns.example,2024:feed</id><title type="text">专栏</title><link rel="self" href="https://columns.example/atom"/>'
        '<author><name>Feed Owner</name><uri>https://columns.example/about</uri></author><generator uri="https://gen.example/">gen</generator>',
        root=' xml:lang="zh_CN"',
    ),
    "atom-link-first-text-content": atom(
        '<entry><link href="https://columns.example/a/2"/><id>https://columns.example/a/2</id><title>Plain</title>'
        "<content>Just text, no markup.</content><updated>2024-05-07T08:00:00Z</updated></entry>"
        "<entry><id>urn:uuid:5f1c</id><title>No link at all</title><summary>only a summary</summary></entry>"
    ),
}


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_fast_path_accepts_and_equals_feedparser(name: str) -> None:
    fast, slow = both(ACCEPTED[name])
    assert fast is not None
    assert fast == slow


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_parse_feed_answers_the_same_with_and_without_the_fast_path(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = parse_feed(ACCEPTED[name], URL)
    monkeypatch.setenv("FEEDLOOM_FEEDPARSER_ONLY", "1")
    assert parse_feed(ACCEPTED[name], URL) == fast


DECLINED = {
    "xml-base": atom('<entry xml:base="https://other.example/"><id>x</id><link href="rel"/></entry>'),
    "xhtml-content": atom('<entry><id>x</id><content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">hi</div></content></entry>'),
    "rss-0.91": b'<rss version="0.91"><channel><title>t</title></channel></rss>',
    "rdf": b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"><channel/></rdf:RDF>',
    "rss-2.01": b'<rss version="2.01"><channel><title>t</title></channel></rss>',
    "prolog-comment": b'<?xml version="1.0"?><!-- <!DOCTYPE rss PUBLIC "netscape"> --><rss version="2.0"><channel/></rss>',
    "comment-in-title": rss("<item><title>a<!-- hidden -->b</title></item>"),
    "unknown-element": rss("<item><title>t</title><foo>bar</foo></item>"),
    "duplicate-title": rss("<item><title>one</title><title>two</title></item>"),
    "own-prefix": b'<rss version="2.0" xmlns:c="http://purl.org/rss/1.0/modules/content/"><channel><item><c:encoded>x</c:encoded></item></channel></rss>',
    "itunes": rss("<item><title>t</title></item>", root=' xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"'),
    "nested-namespace": rss('<item><title>t</title><x:id xmlns:x="urn:x">1</x:id></item>'),
    "base64-summary": atom('<entry><id>x</id><summary type="image/png">aGk=</summary></entry>'),
    "lang-on-item": rss('<item xml:lang="fr"><title>t</title></item>'),
    "children-in-description": rss("<item><description><p>raw markup</p></description></item>"),
}


@pytest.mark.parametrize("name", sorted(DECLINED))
def test_fast_path_declines_what_it_does_not_model(name: str) -> None:
    body, _, doc_base = prepare_xml(DECLINED[name], URL, {})
    assert fast_parse(body, URL, doc_base) is None
    assert isinstance(parse_feed(DECLINED[name], URL), RawFeed)  # feedparser still reads it


def test_feedparser_only_switch_skips_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(feed_module, "fast_parse", lambda body, url, base: calls.append(url))
    monkeypatch.setenv("FEEDLOOM_FEEDPARSER_ONLY", "1")
    assert parse_feed(ACCEPTED["rss-chinese-cdata"], URL).entries
    assert calls == []
    monkeypatch.delenv("FEEDLOOM_FEEDPARSER_ONLY")
    assert parse_feed(ACCEPTED["rss-chinese-cdata"], URL).entries  # the stub said None: feedparser answered
    assert calls == [URL]


def test_a_content_language_header_leaves_the_feed_to_feedparser(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(feed_module, "fast_parse", lambda body, url, base: calls.append(url))
    feed = parse_feed(ACCEPTED["atom-html-content"], URL, {"Content-Language": "fr"})
    assert calls == []
    assert feed.version == "atom10"


def test_every_generated_benchmark_feed_takes_the_fast_path(tmp_path: Path) -> None:
    corpus = generate_corpus(tmp_path, feeds=20, seed=11)
    for path in corpus.feed_paths:
        raw = (tmp_path / path.lstrip("/")).read_bytes()
        url = f"http://127.0.0.1:8000{path}"
        fast, slow = both(raw, url, {"content-type": "application/rss+xml"})
        assert fast is not None, path
        assert fast == slow, path
        assert len(fast.entries) >= 20


# Random feeds from the whitelist's parts, in random order, with the values feedparser treats specially.
TEXTS = (
    "", "  ", "Plain words", "A &amp; B", "&lt;b&gt;bold&lt;/b&gt; words", "caf\u00e9", "\u00c3\u00a9t\u00c3\u00a9", "&#x93;q&#x94; &#150;",
    "产品经理的一天", "<![CDATA[<p>cdata &amp; <b>html</b></p>]]>", " \u3000padded\u3000 ", "x &lt; y", "emoji 😀", "a\r\nb",
)
URLS = ("https://e.example/a", "http:///triple.example/x", "https://e.example/q?a=1&amp;b;c", "rel/path", "tag:e.example,2024:1", " https://e.example/s ", "")
PEOPLE = ("Ada Park", "ada@e.example (Ada Park)", "Ada Park &lt;ada@e.example&gt;", "ada@e.example", "", "林晓")


def random_rss_item(rng: random.Random) -> str:
    c = rng.choice
    parts = [
        f"<title>{c(TEXTS)}</title>", f"<link>{c(URLS)}</link>", f"<description>{c(TEXTS)}</description>",
        f"<content:encoded>{c(TEXTS)}</content:encoded>", f'<guid isPermaLink="{c(("true", "false", "True"))}">{c(URLS)}</guid>',
        f"<pubDate>{c(TEXTS[:3])}</pubDate>", f"<dc:creator>{c(PEOPLE)}</dc:creator>", f"<author>{c(PEOPLE)}</author>",
        f"<category>{c(TEXTS[:6])}</category>", f"<category>{c(TEXTS[:6])}</category>", f'<category domain="{c(("d", ""))}">{c(TEXTS[:4])}</category>',
        f'<enclosure url="{c(URLS)}" type="{c(("image/JPEG", "audio/mpeg", ""))}"/>', f'<media:thumbnail url="{c(URLS)}"/>',
        f'<atom:link href="{c(URLS)}" rel="{c(("alternate", "enclosure", "related"))}" type="{c(("text/html", "image/png"))}"/>',
    ]  # fmt: skip
    return "<item>" + "".join(rng.sample(parts, rng.randint(0, len(parts)))) + "</item>"


def random_atom_entry(rng: random.Random) -> str:
    c = rng.choice
    kind = lambda: c(("", ' type="html"', ' type="text"', ' type="HTML"'))  # noqa: E731
    person = f"<author>{''.join(rng.sample([f'<name>{c(PEOPLE)}</name>', f'<email>{c(PEOPLE)}</email>', f'<uri>{c(URLS)}</uri>'], rng.randint(0, 3)))}</author>"
    parts = [
        f"<id>{c(URLS)}</id>", f"<title{kind()}>{c(TEXTS)}</title>", f"<summary{kind()}>{c(TEXTS)}</summary>", f"<content{kind()}>{c(TEXTS)}</content>",
        f"<published>{c(TEXTS[:3])}</published>", f"<updated>{c(TEXTS[:3])}</updated>", person, person,
        f'<link href="{c(URLS)}" rel="{c(("alternate", "self", "enclosure", "ALTERNATE"))}"/>', f'<link href="{c(URLS)}"/>',
        f'<category term="{c(("Tech", "", "产品"))}" label="{c(("L", ""))}"/>',
    ]  # fmt: skip
    return "<entry>" + "".join(rng.sample(parts, rng.randint(0, len(parts)))) + "</entry>"


def random_feed(seed: int) -> bytes:
    rng = random.Random(seed)
    c = rng.choice
    lang = c(("", ' xml:lang=""', ' xml:lang="zh_CN"', ' xml:lang="en"'))
    if rng.random() < 0.5:
        head = [f"<title>{c(TEXTS)}</title>", f"<link>{c(URLS)}</link>", "<language>zh-cn</language>", f"<ttl>{c(('60', ' 5 ', 'x'))}</ttl>",
                f"<managingEditor>{c(PEOPLE)}</managingEditor>", f"<category>{c(TEXTS[:6])}</category>", f"<generator>{c(TEXTS)}</generator>"]  # fmt: skip
        items = [random_rss_item(rng) for _ in range(rng.randint(0, 4))]
        return rss("".join(items), "".join(rng.sample(head, rng.randint(0, len(head)))), root=lang)
    head = [f"<id>{c(URLS)}</id>", f"<title>{c(TEXTS)}</title>", f'<link href="{c(URLS)}"/>', f"<author><name>{c(PEOPLE)}</name></author>"]
    entries = [random_atom_entry(rng) for _ in range(rng.randint(0, 4))]
    return atom("".join(entries), "".join(rng.sample(head, rng.randint(0, len(head)))), root=lang)


def test_random_feeds_agree_with_feedparser_whenever_the_fast_path_answers() -> None:
    accepted = 0
    for seed in range(300):
        body, headers, doc_base = prepare_xml(random_feed(seed), URL, {})
        fast = fast_parse(body, URL, doc_base)
        if fast is not None:
            accepted += 1
            assert fast == parse_with_feedparser(body, URL, headers, doc_base), f"seed {seed}"
    assert accepted >= 100  # the generator does exercise the fast path


def test_corpus_files_agree_with_feedparser_whenever_the_fast_path_answers(corpus: Path) -> None:
    accepted = checked = 0
    for path in sorted(p for p in corpus.rglob("*") if p.suffix in (".xml", ".rss", ".atom") and p.is_file()):
        raw = path.read_bytes()
        if not raw.strip() or looks_like_json(raw, ""):
            continue  # parse_feed never reaches either XML parser for these
        url = f"https://corpus.example/{path.relative_to(corpus).as_posix()}"
        try:
            body, headers, doc_base = prepare_xml(raw, url, {})
        except FeedError:
            continue
        checked += 1
        fast = fast_parse(body, url, doc_base)
        if fast is None:
            continue
        accepted += 1
        assert fast == parse_with_feedparser(body, url, headers, doc_base), path
    print(f"fast path took {accepted} of {checked} corpus XML files")
    assert accepted > 0


# --- the helpers restated from feedparser, on plain dicts ------------------------

AUTHOR_STRINGS = ["", "Jane", "jane@example.com", "jane@example.com (Jane Doe)", "Jane <jane@example.com>",
                  "(Jane)", "孟永辉", "a@b.co &lt;&gt;", "mailto:x@y.org?subject=hi there", "x@[1.2.3.4]"]  # fmt: skip


@pytest.mark.parametrize("author", AUTHOR_STRINGS)
@pytest.mark.parametrize("detail", [None, {"name": "N"}, {"email": "e@x.org"}, {"name": "N", "email": "e@x.org"}])
def test_sync_author_detail_matches_feedparser(author: str, detail: dict[str, str] | None) -> None:
    from feedparser.mixin import _FeedParserMixin
    from feedparser.util import FeedParserDict

    from crawler.parsers.fastfeed import _sync_author_detail

    ours: dict = {"author": author, "authors": [dict(detail or {})]}
    theirs_context = {"author": author, "authors": [FeedParserDict(detail or {})]}
    mixin = _FeedParserMixin.__new__(_FeedParserMixin)
    mixin._get_context = lambda: theirs_context  # type: ignore[method-assign]
    _sync_author_detail(ours)
    mixin._sync_author_detail()
    assert ours == theirs_context


@pytest.mark.parametrize(
    "uri", ["", "https://a.example/x", "https:///a.example/x", "http:////a/b", "a+b-c.d://///x", "urn:x", "/rel", "//cdn/x", "1a:///x"]
)
def test_fix_uri_matches_feedparser_urljoin_without_a_base(uri: str) -> None:
    from feedparser.urls import _urljoin

    from crawler.parsers.fastfeed import _fix_uri

    assert _fix_uri(uri) == _urljoin("", uri)


def test_add_tag_dedupes_like_feedparser() -> None:
    from crawler.parsers.fastfeed import _add_tag

    context: dict = {}
    for term, scheme, label in [("a", None, None), ("a", None, None), (None, None, None), ("a", "s", None), ("b", None, "B")]:
        _add_tag(context, term, scheme, label)
    assert context["tags"] == [
        {"term": "a", "scheme": None, "label": None},
        {"term": "a", "scheme": "s", "label": None},
        {"term": "b", "scheme": None, "label": "B"},
    ]


@given(st.text(alphabet=st.characters(max_codepoint=0x2FF) | st.characters(min_codepoint=0x4E00, max_codepoint=0x4E20) | st.characters(min_codepoint=0x80, max_codepoint=0xA0)))
def test_has_c1_is_a_c1_search(text: str) -> None:
    import re

    from crawler.parsers.fastfeed import _has_c1

    assert _has_c1(text) == (re.search("[\x80-\x9f]", text) is not None)


# -- feedparser's small rules, restated so that the fast path never imports feedparser --------------


def test_the_restated_tables_are_feedparsers() -> None:
    from feedparser.html import _cp1252
    from feedparser.mixin import _FeedParserMixin
    from feedparser.sanitizer import _HTMLSanitizer
    from feedparser.urls import _urifixer

    assert fastfeed._cp1252 == _cp1252
    assert fastfeed._urifixer.pattern == _urifixer.pattern
    assert fastfeed._HTML_TYPES == set(_FeedParserMixin.html_types)
    assert fastfeed._ACCEPTABLE_ELEMENTS == set(_HTMLSanitizer.acceptable_elements)


@pytest.mark.parametrize("given", ["text", "TEXT", "plain", "html", "xhtml", "text/html", "application/xhtml+xml", "image/png", ""])
def test_map_content_type_is_feedparsers(given: str) -> None:
    from feedparser.mixin import _FeedParserMixin

    assert fastfeed.map_content_type(given) == _FeedParserMixin.map_content_type(given)


@given(st.text(alphabet=st.sampled_from(list("<>/&#;ab pdivscript1ampltxyzé")), max_size=40))
@settings(max_examples=400, deadline=None)
def test_looks_like_html_is_feedparsers(text: str) -> None:
    from feedparser.mixin import _FeedParserMixin

    assert fastfeed.looks_like_html(text) == bool(_FeedParserMixin.looks_like_html(text))


def test_a_feed_the_fast_path_reads_never_imports_feedparser() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from crawler.parsers.feed import parse_feed;"
        "f = parse_feed(b'<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>t</title>"
        "<item><title>a</title><link>https://example.com/a</link></item></channel></rss>', 'https://example.com/feed', {});"
        "print(len(f.entries), 'feedparser' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["1", "False"]
