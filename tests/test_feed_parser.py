"""parse_feed on hand-written feeds: encodings decided before feedparser, clean feed titles, authors, links and ids."""

from __future__ import annotations

import codecs

import pytest

from crawler.parsers.feed import parse_feed, transcode_to_utf8
from crawler.parsers.jsonfeed import parse_json_feed

URL = "https://blog.example/feed.xml"

ZH_TITLE = "产品经理的十个沟通习惯"
ZH_TEXT = "需求评审的时候，先讲清楚用户遇到的问题，再讨论方案和排期，会议就不会变成争吵。"


def rss(title: str, body: str = "", encoding: str | None = None, channel: str = "") -> str:
    decl = f'<?xml version="1.0" encoding="{encoding}"?>\n' if encoding else ""
    return (
        f"{decl}<rss version=\"2.0\"><channel><title>Feed</title>{channel}"
        f"<item><title>{title}</title><link>https://blog.example/1</link><description>{body}</description></item>"
        "</channel></rss>"
    )


@pytest.mark.parametrize("codec", ["big5", "gb2312", "shift_jis", "euc-kr", "koi8-r"])
def test_undeclared_legacy_encodings_are_detected(codec: str) -> None:
    title, body = {
        "big5": ("產品經理的十個溝通習慣", "需求評審的時候，先講清楚使用者遇到的問題，再討論方案和排期，會議就不會變成爭吵。"),
        "gb2312": (ZH_TITLE, ZH_TEXT),
        "shift_jis": ("プロダクトマネージャーの習慣", "要件レビューでは、まずユーザーが困っていることを説明してから、案と日程を話し合います。"),
        "euc-kr": ("제품 관리자의 소통 습관", "요구 사항 검토에서는 먼저 사용자가 겪는 문제를 설명하고 그다음에 방안과 일정을 논의합니다."),
        "koi8-r": ("Привычки менеджера продукта", "Сначала объясните проблему пользователя, потом обсуждайте решение и сроки."),
    }[codec]
    feed = parse_feed(rss(title, body).encode(codec), URL)
    (entry,) = feed.entries
    assert entry.title == title
    assert entry.summary == body


def test_a_prolog_that_lies_loses_to_utf8_bytes() -> None:
    body = rss("Café au lait", encoding="ISO-8859-1").encode("utf-8")
    assert parse_feed(body, URL).entries[0].title == "Café au lait"


def test_utf8_with_a_stray_byte_keeps_its_utf8() -> None:
    body = rss("It’s “quoted”").encode("utf-8").replace(b"quoted", b"quoted \xa9")
    assert parse_feed(body, URL).entries[0].title == "It’s “quoted ©”"


def test_declared_latin1_is_read_as_windows_1252() -> None:
    body = rss("Price: 5 € – fair", encoding="iso-8859-1").encode("cp1252")
    assert parse_feed(body, URL).entries[0].title == "Price: 5 € – fair"


def test_http_charset_counts_when_the_bytes_fit_it() -> None:
    body = rss("Zażółć gęślą jaźń").encode("iso-8859-2")
    feed = parse_feed(body, URL, {"Content-Type": "application/rss+xml; charset=iso-8859-2"})
    assert feed.entries[0].title == "Zażółć gęślą jaźń"


def test_gb2312_label_decodes_as_gb18030() -> None:
    title = "喆的文章"  # 喆 is outside GB2312: real "GB2312" feeds are GBK/GB18030
    body = rss(title, encoding="gb2312").encode("gb18030")
    assert parse_feed(body, URL).entries[0].title == title


@pytest.mark.parametrize("codec, bom", [("utf-16-le", codecs.BOM_UTF16_LE), ("utf-16-be", codecs.BOM_UTF16_BE), ("utf-8", codecs.BOM_UTF8)])
def test_bom_and_newline_before_the_declaration(codec: str, bom: bytes) -> None:
    body = bom + ("\n\n" + rss(ZH_TITLE, encoding="utf-16" if codec.startswith("utf-16") else "utf-8")).encode(codec)
    assert parse_feed(body, URL).entries[0].title == ZH_TITLE


@pytest.mark.parametrize("body", [b"<rss version='2.0'><channel><title>Empty</title></channel></rss>", b"<feed xmlns='http://www.w3.org/2005/Atom'><title>Empty</title></feed>"])
def test_a_feed_without_entries_and_without_headers_parses(body: bytes) -> None:
    feed = parse_feed(body, URL)
    assert feed.title == "Empty" and feed.entries == ()


def test_transcode_is_idempotent() -> None:
    once = transcode_to_utf8(rss(ZH_TITLE, ZH_TEXT, encoding="gbk").encode("gbk"))
    assert b'encoding="utf-8"' in once
    assert transcode_to_utf8(once) == once


@pytest.mark.parametrize(
    "title, kind, expected",
    [
        ("Tom &amp;amp; Jerry", "text", "Tom & Jerry"),
        ("&lt;b&gt;Bold&lt;/b&gt; news", "html", "Bold news"),
        ("safe&lt;script&gt;alert(1)&lt;/script&gt; title", "html", "safe title"),
        ("  spaced \n  out ", "text", "spaced out"),
    ],
)
def test_feed_title_is_clean_text(title: str, kind: str, expected: str) -> None:
    body = f'<feed xmlns="http://www.w3.org/2005/Atom"><title type="{kind}">{title}</title></feed>'.encode()
    assert parse_feed(body, URL).title == expected


def test_first_author_with_email_for_feed_and_entry() -> None:
    body = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>
      <author><name>One</name><email>one@blog.example</email></author><author><name>Two</name></author>
      <entry><id>urn:x:1</id><title>E</title><author><name>Ann</name><email>ann@blog.example</email></author>
      <author><name>Bob</name></author></entry></feed>"""
    feed = parse_feed(body, URL)
    assert feed.author == "One <one@blog.example>"
    (entry,) = feed.entries
    assert (entry.author, entry.author_email) == ("Ann", "ann@blog.example")


def test_alternate_link_wins_over_an_earlier_enclosure() -> None:
    body = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><entry><id>urn:x:1</id><title>E</title>
      <link rel="enclosure" type="audio/mpeg" href="https://cdn.example/a.mp3"/>
      <link rel="alternate" type="text/html" href="/posts/1"/></entry></feed>"""
    assert parse_feed(body, URL).entries[0].link == "https://blog.example/posts/1"


def test_feedburner_origlink_is_the_link() -> None:
    body = b"""<rss version="2.0" xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0"><channel><title>T</title>
      <item><title>E</title><link>http://feedproxy.google.com/~r/blog/~3/abc/post.html</link>
      <feedburner:origLink>https://blog.example/post.html</feedburner:origLink></item></channel></rss>"""
    assert parse_feed(body, URL).entries[0].link == "https://blog.example/post.html"


@pytest.mark.parametrize("guid", ["t3_42tizy", "HTTP://Example.org/thing", "tag:blog.example,2024:1"])
def test_ids_are_kept_as_given_while_links_resolve(guid: str) -> None:
    body = f"""<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>
      <entry><id>{guid}</id><title>E</title><link href="posts/1"/></entry></feed>""".encode()
    (entry,) = parse_feed(body, URL, {"Content-Location": "https://blog.example/feeds/all.xml"}).entries
    assert entry.guid == guid
    assert entry.link == "https://blog.example/feeds/posts/1"


def test_an_xml_base_left_in_force_does_not_rewrite_the_next_id() -> None:
    body = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><entry>
      <content type="xhtml" xml:base="/.rss?limit=50"><div xmlns="http://www.w3.org/1999/xhtml">x</div></content>
      <id>t3_42abcd</id><title>E</title><link href="https://blog.example/42"/></entry></feed>"""
    assert parse_feed(body, URL).entries[0].guid == "t3_42abcd"


def test_doctype_text_inside_cdata_is_content() -> None:
    body = b"<rss version='2.0'><channel><title>T</title><item><title>E</title><description><![CDATA[ <!DOCTYPE ]]></description></item></channel></rss>"
    (entry,) = parse_feed(body, URL).entries
    assert entry.summary == "<!DOCTYPE"


def test_json_feed_mailto_author_is_an_email() -> None:
    body = b"""{"version": "https://jsonfeed.org/version/1.1", "title": "T",
      "authors": [{"name": "Joe", "url": "mailto:joe@blog.example"}],
      "items": [{"id": "1", "content_text": "x", "authors": [{"url": "mailto:ann@blog.example?subject=hi"}]},
                {"id": "2", "content_text": "y", "authors": [{"name": "Bo", "url": "https://bo.example/"}]}]}"""
    feed = parse_json_feed(body, "https://blog.example/feed.json")
    assert feed.author == "Joe <joe@blog.example>"
    first, second = feed.entries
    assert (first.author, first.author_email) == (None, "ann@blog.example")
    assert (second.author, second.author_email) == ("Bo", None)


@pytest.mark.parametrize(
    "url",
    [
        "https://www.woshipm.com/pd/123.html", "http://a.example", "http://a.example:8080/x/y?a=1&b=%E4#frag",
        "https://a.example/?q=产品#章节", "https://a.example/a@b/c:d/(x)", "https://a.example//double", "http://a.example/x?a?b#c#d",
    ],
)  # fmt: skip
@pytest.mark.parametrize("base", ["https://columns.example/feed.xml", "http://columns.example/", "feed://x/", "", "http://[bad/"])
def test_plain_absolute_links_are_what_urljoin_gives(url: str, base: str) -> None:
    from urllib.parse import urljoin

    from crawler.parsers.feed import _PLAIN_ABSOLUTE, _absolute

    assert _PLAIN_ABSOLUTE.fullmatch(url)
    try:
        expected = urljoin(base, url) if base else url
    except ValueError:
        expected = url
    assert _absolute(base, url) == expected


@pytest.mark.parametrize("url", ["HTTP://a.example/x", "https://a.example/x;p", "https://a.example/x?", "https://a.example/x#", "https://[::1]/x", " https://a/x"])
def test_links_urljoin_would_change_take_the_slow_way(url: str) -> None:
    from crawler.parsers.feed import _PLAIN_ABSOLUTE

    assert _PLAIN_ABSOLUTE.fullmatch(url) is None


@pytest.mark.parametrize("body", [b"", b"<?xml version='1.0'?><rss/>", b" \t\r\n\x0b\x0c<?xml version='1.0'?><rss/>", b"\n<rss/>", b"  <?xm", b"\xa0<?xml?>"])
def test_normalize_prolog_drops_only_whitespace_before_the_declaration(body: bytes) -> None:
    from crawler.parsers.feed import _normalize_prolog

    stripped = body.lstrip()
    assert _normalize_prolog(body) == (stripped if stripped.startswith(b"<?xml") else body)


@pytest.mark.parametrize("body", [b" ", b"\r\n\t\x0b\x0c"])
def test_a_whitespace_body_is_an_empty_response(body: bytes) -> None:
    from crawler.parsers.feed import FeedError

    with pytest.raises(FeedError, match="empty response body"):
        parse_feed(body, "https://columns.example/feed.xml")
