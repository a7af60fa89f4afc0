"""Tests for pipelines.metadata: dates, URLs, titles, authors, categories, language, length, the stage."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crawler.items import FeedContext, RawEntry
from pipelines.metadata import (
    TRACKING_PARAMS,
    author_from_channel_title,
    count_words,
    default_timezone,
    detect_language,
    normalize_categories,
    normalize_date,
    normalize_metadata,
    normalize_title,
    normalize_url,
    reading_minutes,
    split_author,
)

DATES = json.loads((Path(__file__).parent / "fixtures" / "dates.json").read_text(encoding="utf-8"))
NOW = DATES["now"]


# --- dates ------------------------------------------------------------------


@pytest.mark.parametrize("case", DATES["cases"], ids=lambda c: f"{c['value']!r}@{c['tz']}")
def test_normalize_date_table(case: dict[str, Any]) -> None:
    assert normalize_date(case["value"], default_tz=case["tz"], now=NOW) == case["expected"]


@pytest.mark.parametrize("case", [c for c in DATES["cases"] if c["expected"]], ids=lambda c: repr(c["value"]))
def test_normalize_date_is_idempotent(case: dict[str, Any]) -> None:
    once = normalize_date(case["value"], default_tz=case["tz"], now=NOW)
    assert normalize_date(once, default_tz=case["tz"], now=NOW) == once


def test_feedparser_misreads_are_read_right() -> None:
    assert normalize_date("2022年01月28日", now=NOW) == "2022-01-28T00:00:00Z"
    assert normalize_date("1643364000", now=NOW) == "2022-01-28T10:00:00Z"


@pytest.mark.parametrize("value", [None, True, False, float("nan"), float("inf"), -1.5])
def test_normalize_date_rejects_non_dates(value: Any) -> None:
    assert normalize_date(value, now=NOW) is None


def test_normalize_date_now_defaults_to_the_current_time() -> None:
    assert normalize_date("2022-01-28T10:00:00Z") == "2022-01-28T10:00:00Z"
    assert normalize_date("2999-01-01T00:00:00Z") is None
    assert normalize_date("刚刚") is not None


@pytest.mark.parametrize(
    "now",
    [
        "2022-02-01T12:00:00Z",
        "2022-02-01T20:00:00+08:00",
        "2022-02-01T12:00:00",
        datetime(2022, 2, 1, 12, tzinfo=UTC),
        datetime(2022, 2, 1, 12),
    ],
)
def test_now_accepts_strings_and_datetimes(now: str | datetime) -> None:
    assert normalize_date("3小时前", now=now) == "2022-02-01T09:00:00Z"


def test_invalid_now_is_a_caller_error() -> None:
    with pytest.raises(ValueError):
        normalize_date("3小时前", now="yesterday-ish")


@pytest.mark.parametrize(
    "url, language, expected",
    [
        ("https://www.example.cn/feed", None, "+08:00"),
        ("https://news.example.com.cn/rss.xml", "en", "+08:00"),
        ("https://blog.example.hk/feed", None, "+08:00"),
        ("https://rsshub.app/woshipm/popular/daily", "zh-cn", "+08:00"),
        ("https://rsshub.app/woshipm/popular/daily", "zh_TW", "+08:00"),
        ("https://rsshub.app/woshipm/user_article/1", "en", None),
        ("https://example.com/feed", None, None),
        (None, None, None),
        ("not a url", "fr", None),
    ],
)
def test_default_timezone(url: str | None, language: str | None, expected: str | None) -> None:
    assert default_timezone(url, language) == expected


# --- URLs -------------------------------------------------------------------

BASE = "https://www.example.com/column/index.html"


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://www.woshipm.com/ai/5290316.html?utm_source=rsshub&utm_medium=rss", "https://www.woshipm.com/ai/5290316.html"),
        ("https://a.example/x?utm_source=rsshub&amp;utm_medium=rss&amp;id=3", "https://a.example/x?id=3"),
        ("https://a.example/x?b=2&spm=a2c4g.1&a=1&from=timeline&fbclid=XyZ&c=3", "https://a.example/x?b=2&a=1&c=3"),
        ("https://a.example/x?UTM_Campaign=x&gclid=1&yclid=2&mc_cid=3&mc_eid=4&igshid=5", "https://a.example/x"),
        ("https://a.example/x?_hsenc=1&_hsmi=2&ref_src=tw&share_token=s&isappinstalled=0&scene=21&k=v", "https://a.example/x?k=v"),
        ("https://a.example/x?a=1&&b=2&", "https://a.example/x?a=1&b=2"),
        ("HTTP://WWW.Example.COM:80", "http://www.example.com/"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("http://example.com:443/a", "http://example.com:443/a"),
        ("https://example.com./a#section-2", "https://example.com/a"),
        ("https://user:secret@example.com/a", "https://example.com/a"),
        ("https://例子.测试/路径?q=中文", "https://xn--fsqu00a.xn--0zwm56d/%E8%B7%AF%E5%BE%84?q=%E4%B8%AD%E6%96%87"),
        ("https://example.com/%7euser/%e4%b8%ad 50%", "https://example.com/~user/%E4%B8%AD%2050%25"),
        ("https://example.com/a/./b/../c", "https://example.com/a/c"),
        ("https://example.com/a/%2E%2E/b", "https://example.com/b"),
        ("http://[::FFFF:7F00:1]:8080/x", "http://[::ffff:7f00:1]:8080/x"),
        ("http://127.0.0.1:8097/feed.xml", "http://127.0.0.1:8097/feed.xml"),
        ("\u00a0 https://example.com/a \u3000", "https://example.com/a"),
        ("https://exa\tmple.com/a\n", "https://example.com/a"),
        ("https://example.com/?q=a+b&x=%zz", "https://example.com/?q=a+b&x=%25zz"),
    ],
)
def test_normalize_url(url: str, expected: str) -> None:
    assert normalize_url(url) == expected


@pytest.mark.parametrize(
    "url, expected",
    [
        ("/pd/5291873.html", "https://www.example.com/pd/5291873.html"),
        ("next.html", "https://www.example.com/column/next.html"),
        ("../img/a.jpg", "https://www.example.com/img/a.jpg"),
        ("//cdn.example.net/a.jpg", "https://cdn.example.net/a.jpg"),
        ("?page=2", "https://www.example.com/column/index.html?page=2"),
        ("#comments", "https://www.example.com/column/index.html"),
        ("https://other.example/x", "https://other.example/x"),
    ],
)
def test_normalize_url_resolves_against_base(url: str, expected: str) -> None:
    assert normalize_url(url, BASE) == expected


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        "   ",
        "javascript:alert(1)",
        " javascript:alert(1)",
        "JavaScript:alert(1)",
        "java&#x09;script:alert(1)",
        "java\tscript:alert(1)",
        "&#106;avascript:alert(1)",
        "&#x6A;&#x61;vascript:alert(1)",
        "jav\u200bascript:alert(1)",
        "data:image/png;base64,AAAA",
        "vbscript:msgbox(1)",
        "mailto:someone@example.com",
        "ftp://example.com/file",
        "feed:https://example.com/rss",
        "http://",
        "http:///path",
        "http:example.com",
        "https://exa mple.com/",
        "https://example.com:99999/",
        "https://example.com:8o/",
        "http://[::1/",
        "https://trusted.example\\@evil.example/",
        "https://a..b/",
    ],
)
def test_normalize_url_rejects(url: str | None) -> None:
    assert normalize_url(url, BASE) is None


@pytest.mark.parametrize("url", ["relative/path.html", "/abs", "//host.example/x", "garbage"])
def test_relative_url_without_base_is_none(url: str) -> None:
    assert normalize_url(url) is None
    assert normalize_url(url, "javascript:void(0)") is None


@pytest.mark.parametrize("url", ["https://www.woshipm.com/ai/5290316.html?utm_source=rsshub&utm_medium=rss", "HTTP://例子.测试:80/a b/%7e?x=1&spm=2#f"])
def test_normalize_url_is_idempotent(url: str) -> None:
    once = normalize_url(url)
    assert once is not None
    assert normalize_url(once) == once


def test_tracking_params_are_lower_case_names() -> None:
    assert all(name == name.lower() for name in TRACKING_PARAMS)
    assert {"spm", "from", "fbclid", "gclid", "yclid", "mc_cid", "mc_eid", "igshid", "_hsenc", "_hsmi"} <= TRACKING_PARAMS


_URL_TEXT = st.one_of(
    st.text(max_size=80),
    st.builds(
        lambda scheme, host, rest: f"{scheme}://{host}{rest}",
        st.sampled_from(["http", "https", "HTTP", "javascript", "ftp"]),
        st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=20),
        st.text(max_size=60),
    ),
    st.builds(
        lambda host, rest: f"https://{host}.example/{rest}",
        st.from_regex(r"[a-zA-Z0-9\-]{1,10}", fullmatch=True),
        st.text(alphabet="abc/.%?&=#:;@+ -_~中\u00e9XYZ0123456789", max_size=40),
    ),
)


@given(_URL_TEXT)
def test_normalize_url_is_idempotent_on_any_text(text: str) -> None:
    once = normalize_url(text)
    if once is not None:
        assert normalize_url(once) == once
        assert once.startswith(("http://", "https://"))


@given(st.text(alphabet="abc/.%?&=#:;@+ -_~中\u00e9\t", max_size=40))
def test_normalize_url_with_base_is_idempotent(text: str) -> None:
    once = normalize_url(text, BASE)
    if once is not None:
        assert normalize_url(once) == once
        assert normalize_url(once, BASE) == once


# --- titles -----------------------------------------------------------------


@pytest.mark.parametrize(
    "value, is_html, expected",
    [
        (None, False, ""),
        ("", False, ""),
        ("  Plain   title  ", False, "Plain title"),
        ("Tabs\tand\nnewlines\r\n", False, "Tabs and newlines"),
        ("NBSP\u00a0and\u3000ideographic\u2003spaces", False, "NBSP and ideographic spaces"),
        ("zero\u200bwidth\ufeff\u2060gone\u00ad", False, "zerowidthgone"),
        ("bell\x07 and\x00 nul\x85", False, "bell and nul"),
        ("Tom &amp; Jerry", False, "Tom & Jerry"),
        ("Tom &amp;amp; Jerry", False, "Tom & Jerry"),
        ("&#x4E2D;&#25991; &lt;3", False, "中文 <3"),
        ("AT&T, R&D and this&not that", False, "AT&T, R&D and this&not that"),
        ("a < b and c > d", False, "a < b and c > d"),
        ("Vector<int> in C++", False, "Vector<int> in C++"),
        ("<b>Bold</b> move", False, "Bold move"),
        ("<em>Ital</em>ic", True, "Italic"),
        ("One<br>Two<p>Three</p>", True, "One Two Three"),
        ("x<!-- hidden --> y", True, "x y"),
        ("<script>alert(1)</script>Safe", True, "Safe"),
        ("&lt;b&gt;escaped&lt;/b&gt; markup", True, "escaped markup"),
        ("互联网需要跨境电商", False, "互联网需要跨境电商"),
        ("emoji 👨\u200d👩\u200d👧 stays joined", False, "emoji 👨\u200d👩\u200d👧 stays joined"),
    ],
)
def test_normalize_title(value: str | None, is_html: bool, expected: str) -> None:
    assert normalize_title(value, is_html=is_html) == expected


@pytest.mark.parametrize("is_html", [False, True])
@given(text=st.text(alphabet=st.characters(), max_size=60) | st.text(alphabet="<>&;#amplt /bi\u00a0\u3000x1", max_size=40))
def test_normalize_title_is_idempotent(text: str, is_html: bool) -> None:
    once = normalize_title(text, is_html=is_html)
    assert normalize_title(once, is_html=is_html) == once
    assert once == once.strip()
    assert "  " not in once



@pytest.mark.parametrize(
    "value, expected",
    [
        ("sa<!-- a comment -->fe", "safe"),  # a comment inside a word leaves the word whole
        ("sa<!-- -- nonwhitespace >fe", "safe"),  # an SGML-style comment closed by a bare ">"
        ("safe<!--", "safe"),  # a comment never closed runs to the end, as in a browser
        ("safe<!-- the rest", "safe"),
        ("sa<script>alert(1)</script>fe", "safe"),
        ("one<p>two</p>", "one two"),  # block tags still separate words
    ],
)
def test_normalize_title_drops_comments_and_scripts_whole(value: str, expected: str) -> None:
    assert normalize_title(value) == expected
    assert normalize_title(expected) == expected

# --- authors ----------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, (None, None)),
        ("", (None, None)),
        ("孟永辉", ("孟永辉", None)),
        ("  Jane   Doe ", ("Jane Doe", None)),
        ("jane@example.com (Jane Doe)", ("Jane Doe", "jane@example.com")),
        ("Jane Doe <jane@Example.COM>", ("Jane Doe", "jane@example.com")),
        ('"Jane Doe" <mailto:jane@example.com>', ("Jane Doe", "jane@example.com")),
        ("Jane Doe &lt;jane@example.com&gt;", ("Jane Doe", "jane@example.com")),
        ("Jane Doe (jane@example.com)", ("Jane Doe", "jane@example.com")),
        ("jane@example.com", (None, "jane@example.com")),
        ("(Jane Doe)", ("Jane Doe", None)),
        ("noreply@blogger.com (Unknown)", (None, None)),
        ("no-reply@example.com (Jane Doe)", ("Jane Doe", None)),
        ("<b>Jane</b> &amp; John", ("Jane & John", None)),
        ("By Jane Doe", ("Jane Doe", None)),
        ("作者：孟永辉", ("孟永辉", None)),
        ("Jane Doe (Example Corp)", ("Jane Doe (Example Corp)", None)),
        ("unknown", (None, None)),
    ],
)
def test_split_author(value: str | None, expected: tuple[str | None, str | None]) -> None:
    assert split_author(value) == expected


@pytest.mark.parametrize(
    "title, expected",
    [
        ("孟永辉的文章-人人都是产品经理", "孟永辉"),
        ("孟永辉的文章 - 人人都是产品经理", "孟永辉"),
        ("林知远的文章 - 人人都是产品经理", "林知远"),
        ("林知远的文章", "林知远"),
        ("张三 的专栏 | 知乎", "张三"),
        ("人人都是产品经理 - 孟永辉的文章", "孟永辉"),
        ("Articles by Jane Doe - Example Blog", "Jane Doe"),
        ("人人都是产品经理 - 热门文章 - 日榜", None),
        ("Example Blog", None),
        ("", None),
        (None, None),
    ],
)
def test_author_from_channel_title(title: str | None, expected: str | None) -> None:
    assert author_from_channel_title(title) == expected


# --- categories -------------------------------------------------------------


def test_normalize_categories_flattens_cleans_and_dedupes() -> None:
    got = normalize_categories(["产品设计", " AI ", None, ""], ("<b>ai</b>", "Cars, Trucks", "产品设计", "B端产品"))
    assert got == ("产品设计", "AI", "Cars, Trucks", "B端产品")


def test_normalize_categories_keeps_first_spelling_and_order() -> None:
    assert normalize_categories(["Python", "python", "PYTHON", "Rust"]) == ("Python", "Rust")


def test_normalize_categories_takes_a_bare_string_as_one_label() -> None:
    assert normalize_categories("用户增长", ["用户增长", "运营"]) == ("用户增长", "运营")


def test_normalize_categories_empty() -> None:
    assert normalize_categories() == ()
    assert normalize_categories([], [None, " ", "&nbsp;"]) == ()


@given(st.lists(st.text(max_size=12) | st.none(), max_size=8), st.lists(st.text(max_size=12), max_size=8))
def test_normalize_categories_is_idempotent(first: list[str | None], second: list[str]) -> None:
    once = normalize_categories(first, second)
    assert normalize_categories(once) == once


# --- language and length -----------------------------------------------------

ZH = "从零到一搭建产品的权限体系，是每个产品经理都要面对的问题。"
JA = "新しい映画が公開されました。とても楽しみにしています。"
KO = "안녕하세요 여러분, 오늘은 좋은 날입니다."
EN = "The team shipped the new release and this is what changed for users of the product."


@pytest.mark.parametrize(
    "declared, text, expected",
    [
        ("en-US", "", "en-us"),
        ("zh_CN", "", "zh-cn"),
        ("  ZH-Hans-CN ", "", "zh-hans-cn"),
        ("x-default", "", None),
        ("English", "", "en"),
        (None, "", None),
        ("en", ZH, "zh"),
        ("en", JA, "ja"),
        ("en", KO, "ko"),
        ("fr", ZH, "zh"),
        ("zh-cn", ZH, "zh-cn"),
        ("zh-tw", ZH, "zh-tw"),
        ("zh-cn", JA, "ja"),
        ("ja", "東京大学の入学式", "ja"),
        ("ja", "東京大学", "ja"),
        ("zh-cn", EN, "en"),
        ("zh-cn", "Bonjour à tous, voici la nouvelle version", "zh-cn"),
        ("en", "Q&A: 你好", "en"),
        ("en", EN, "en"),
        ("de", EN, "de"),
        (None, ZH, "zh"),
        (None, JA, "ja"),
        (None, KO, "ko"),
        (None, EN, "en"),
        (None, "Bonjour le monde, je suis ici pour la conférence", None),
        (None, "12345 !!! ---", None),
        ("en", "SaaS产品的RBAC权限模型设计与落地实践指南", "zh"),
    ],
)
def test_detect_language(declared: str | None, text: str, expected: str | None) -> None:
    assert detect_language(declared, text) == expected


def test_detect_language_reads_only_a_sample() -> None:
    assert detect_language("en", ZH * 200 + EN * 2000) == "zh"


@pytest.mark.parametrize(
    "text, words, minutes",
    [
        ("", 0, 0),
        ("   ", 0, 0),
        ("!!!", 0, 1),
        ("hello world", 2, 1),
        ("don't stop", 2, 1),
        ("中文字符", 4, 1),
        ("Hello 世界, it is 2022!", 6, 1),
        ("カタカナ 한국어", 7, 1),
        ("字" * 400, 400, 1),
        ("字" * 401, 401, 2),
        ("word " * 220, 220, 1),
        ("word " * 221, 221, 2),
        ("字" * 200 + " word" * 110, 310, 1),
        ("字" * 4000, 4000, 10),
    ],
)
def test_count_words_and_reading_minutes(text: str, words: int, minutes: int) -> None:
    assert count_words(text) == words
    assert reading_minutes(text) == minutes


# --- the metadata stage -------------------------------------------------------

COLUMNIST_FEED = FeedContext(
    feed_id=7,
    feed_url="https://rsshub.app/woshipm/user_article/100200",
    feed_title="周小舟的文章 - 人人都是产品经理",
    feed_language="zh-cn",
    feed_categories=("产品", "人人都是产品经理"),
    fetched_at="2022-02-01T12:00:00Z",
)


def _raw(**changes: Any) -> RawEntry:
    fields: dict[str, Any] = {
        "guid": " https://www.woshipm.com/pd/1000001.html ",
        "link": "https://www.woshipm.com/pd/1000001.html?utm_source=rsshub&utm_medium=rss",
        "title": "需求评审前，先把&ldquo;为什么&rdquo;写清楚",
        "published": "Fri, 28 Jan 2022 10:00:00 +0800",
        "categories": ("产品设计", " 需求管理 ", "产品"),
        "summary": "<p>摘要</p>",
        "content": "<p>正文</p>",
        "image_urls": ("data:image/gif;base64,R0lGOD", "/wp/2022/01/cover.jpg"),
        "base_url": "https://www.woshipm.com/pd/1000001.html",
    }
    fields.update(changes)
    return RawEntry(**fields)


def test_normalize_metadata_columnist_feed() -> None:
    entry = normalize_metadata(_raw(), COLUMNIST_FEED)
    assert entry.url == "https://www.woshipm.com/pd/1000001.html"
    assert entry.guid == "https://www.woshipm.com/pd/1000001.html"
    assert entry.feed_guid == " https://www.woshipm.com/pd/1000001.html "
    assert entry.feed_link == "https://www.woshipm.com/pd/1000001.html?utm_source=rsshub&utm_medium=rss"
    assert entry.title == "需求评审前，先把\u201c为什么\u201d写清楚"
    assert entry.author == "周小舟"
    assert entry.author_email is None
    assert entry.published_at == "2022-01-28T02:00:00Z"
    assert entry.updated_at is None
    assert entry.published_raw is None
    assert entry.categories == ("产品", "人人都是产品经理", "产品设计", "需求管理")
    assert entry.summary == "<p>摘要</p>"
    assert entry.content_html == "<p>正文</p>"
    assert entry.content_text == ""
    assert entry.cover_image == "https://www.woshipm.com/wp/2022/01/cover.jpg"
    assert entry.language == "zh-cn"
    assert (entry.word_count, entry.reading_minutes, entry.id, entry.content_hash, entry.identity) == (0, 0, "", "", "")
    assert entry.author_bio is None


def test_normalize_metadata_cst_in_a_chinese_feed_is_china_time() -> None:
    entry = normalize_metadata(_raw(published="Fri, 28 Jan 2022 10:00:00 CST"), COLUMNIST_FEED)
    assert entry.published_at == "2022-01-28T02:00:00Z"


def test_normalize_metadata_naive_date_uses_the_feed_zone() -> None:
    entry = normalize_metadata(_raw(published="2022年01月28日 10:00"), COLUMNIST_FEED)
    assert entry.published_at == "2022-01-28T02:00:00Z"
    explicit = FeedContext(feed_id=1, feed_url="https://example.com/feed", timezone="America/New_York", fetched_at=NOW)
    assert normalize_metadata(_raw(published="2022-01-28 10:00"), explicit).published_at == "2022-01-28T15:00:00Z"


def test_normalize_metadata_relative_date_counts_from_fetched_at() -> None:
    entry = normalize_metadata(_raw(published="3小时前"), COLUMNIST_FEED)
    assert entry.published_at == "2022-02-01T09:00:00Z"


def test_normalize_metadata_untrusted_date_is_kept_raw() -> None:
    entry = normalize_metadata(_raw(published=" 2022年2月30日 ", updated="2022-01-29T08:00:00Z"), COLUMNIST_FEED)
    assert entry.published_at == "2022-01-29T08:00:00Z"
    assert entry.updated_at == "2022-01-29T08:00:00Z"
    assert entry.published_raw == "2022年2月30日"
    neither = normalize_metadata(_raw(published=None, updated="someday"), COLUMNIST_FEED)
    assert (neither.published_at, neither.updated_at, neither.published_raw) == (None, None, "someday")
    future = normalize_metadata(_raw(published="Fri, 28 Jan 2033 10:00:00 GMT"), COLUMNIST_FEED)
    assert (future.published_at, future.published_raw) == (None, "Fri, 28 Jan 2033 10:00:00 GMT")


def test_normalize_metadata_item_author_beats_the_channel() -> None:
    entry = normalize_metadata(_raw(author="editor@example.com (林知远)", author_email="lin@Example.com"), COLUMNIST_FEED)
    assert (entry.author, entry.author_email) == ("林知远", "lin@example.com")


def test_normalize_metadata_feed_author_before_channel_title() -> None:
    ctx = FeedContext(feed_id=1, feed_url="https://example.com/feed", feed_title="周小舟的文章", feed_author="Example Editors <desk@example.com>")
    entry = normalize_metadata(_raw(), ctx)
    assert (entry.author, entry.author_email) == ("Example Editors", "desk@example.com")


def test_normalize_metadata_guid_permalink_when_no_link() -> None:
    raw = _raw(link=None, guid="https://www.woshipm.com/pd/1000002.html?from=timeline", guid_is_permalink=True)
    assert normalize_metadata(raw, COLUMNIST_FEED).url == "https://www.woshipm.com/pd/1000002.html"
    not_permalink = _raw(link=None, guid="https://www.woshipm.com/pd/1000002.html", guid_is_permalink=False)
    assert normalize_metadata(not_permalink, COLUMNIST_FEED).url is None
    not_a_url = _raw(link=None, guid="tag:woshipm.com,2022:1000002", guid_is_permalink=True)
    assert normalize_metadata(not_a_url, COLUMNIST_FEED).url is None


def test_normalize_metadata_empty_entry() -> None:
    ctx = FeedContext(feed_id=None, feed_url="https://example.com/feed.xml")
    entry = normalize_metadata(RawEntry(), ctx)
    assert (entry.url, entry.guid, entry.title, entry.author, entry.published_at) == (None, None, "", None, None)
    assert (entry.content_html, entry.cover_image, entry.language, entry.categories) == ("", None, None, ())


def test_normalize_metadata_html_title_and_language_fallback() -> None:
    raw = _raw(title="<b>A</b> &amp; B", title_type="html", language="EN_us", content=None)
    entry = normalize_metadata(raw, COLUMNIST_FEED)
    assert entry.title == "A & B"
    assert entry.language == "en-us"
    assert entry.content_html == "<p>摘要</p>"


def test_metadata_module_stays_pure() -> None:
    code = (
        "import sys, pipelines.metadata;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('scrapy', 'sqlite3', 'sqlite_utils', 'twisted')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1], check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("text", ["", "  ", "电商 is big", "跨境电商" * 300, "word " * 500])
def test_text_stats_matches_count_words_and_reading_minutes(text):
    from pipelines.metadata import text_stats

    assert text_stats(text) == (count_words(text) if text.strip() else 0, reading_minutes(text))


@given(st.text(alphabet="ab9_' \n-.’é中", max_size=40))
def test_word_counts_ascii_shortcut_counts_what_the_regexes_count(text: str) -> None:
    from pipelines import metadata

    # ASCII text is counted on bytes, without the regexes: both must give the same numbers.
    expected = (sum(map(len, metadata._CJK_RUN_RE.findall(text))), len(metadata._WORD_RE.findall(text)))
    assert metadata._word_counts(text) == expected


@given(st.text(alphabet="aZ9 .-'é中か한", max_size=40))
def test_script_language_ascii_shortcut_decides_as_the_counts_do(text: str) -> None:
    from pipelines import metadata

    counts = [0, 0, 0, 0, 0]
    for m in metadata._SCRIPT_RUN_RE.finditer(text):
        counts[m.lastindex or 0] += m.end() - m.start()
    script, cjk = metadata._script_language(text)
    assert cjk == counts[1] + counts[2] + counts[3]
    if text.isascii():
        assert script == ("latin" if counts[4] >= 3 else None)


# --- the fast date forms agree with the general parsers --------------------------

COMMON_DATES = [
    "2024-01-02T03:04:05Z", "2024-01-02T03:04:05+08:00", "2024-01-02T03:04:05-05:30", "2024-01-02T03:04:60+00:00",
    "2024-01-02T03:04:60Z",
    "2024-02-30T03:04:05Z", "2024-01-02T24:00:00Z", "2024-01-02T03:04:05+14:00", "2024-01-02T03:04:05-00:00",
    "Tue, 10 Jun 2003 04:00:00 GMT", "Mon, 1 Jan 2024 23:59:60 +0800", "Sun, 31 Feb 2021 10:00:00 -0700",
    "Fri, 28 Jan 2022 10:00:00 +1400", "Wed, 05 Dec 2018 25:00:00 GMT", "Sat, 00 Mar 2020 10:00:00 +0000",
]  # fmt: skip


def _general(text: str) -> datetime | None:
    from pipelines import metadata

    now = datetime.fromisoformat("2026-11-26T00:00:00+00:00")
    try:
        for parse in metadata._DATE_PARSERS:
            moment = parse(text, None, now)
            if moment is not None:
                return moment
    except ValueError:
        return None
    return None


@pytest.mark.parametrize("text", COMMON_DATES)
def test_common_date_forms_read_as_the_general_parsers_read_them(text: str) -> None:
    from pipelines import metadata

    m = metadata._ISO_ZONED_RE.fullmatch(text) or metadata._RFC822_COMMON_RE.fullmatch(text)
    assert m is not None
    assert metadata._common_date(m) == _general(text)
    assert metadata._parse_date_text(text, None, datetime.fromisoformat("2026-11-26T00:00:00+00:00")) == _general(text)


@given(
    st.integers(1, 9999), st.integers(0, 13), st.integers(0, 32), st.integers(0, 25), st.integers(0, 61),
    st.integers(0, 61), st.integers(0, 3), st.booleans(),
)  # fmt: skip
def test_common_date_forms_agree_on_any_numbers(y: int, mo: int, d: int, h: int, mi: int, s: int, zone: int, rfc: bool) -> None:
    from pipelines import metadata

    if rfc:
        mon = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")[mo % 12]
        text = f"Thu, {d} {mon} {y:04d} {h:02d}:{mi:02d}:{s:02d} {('GMT', '+0545', '-1400', '+0800')[zone]}"
    else:
        text = f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{('Z', '+08:00', '-14:00', '+00:30')[zone]}"
    m = metadata._ISO_ZONED_RE.fullmatch(text) or metadata._RFC822_COMMON_RE.fullmatch(text)
    assert m is not None
    assert metadata._common_date(m) == _general(text)
    assert metadata._parse_date_text(text, None, datetime.fromisoformat("2026-11-26T00:00:00+00:00")) == _general(text)


@pytest.mark.parametrize("fetched_at", [NOW, ""])
@pytest.mark.parametrize("date", ["2024-01-02T03:04:05+08:00", "3小时前", "someday", None])
def test_normalize_metadata_reads_a_repeated_date_as_it_reads_each(fetched_at: str, date: str | None) -> None:
    ctx = FeedContext(feed_id=1, feed_url="https://example.com/feed", fetched_at=fetched_at)
    entry = normalize_metadata(RawEntry(title="t", published=date, updated=date), ctx)
    now = fetched_at or None
    if fetched_at:  # without a fixed `now`, each call reads the clock anew
        assert entry.published_at == normalize_date(date, now=now)
        assert entry.updated_at == normalize_date(date, now=now)
    assert entry.published_raw == (date if date and normalize_date(date, now=now) is None else None)


@given(st.text(alphabet=st.characters(max_codepoint=0x7F) | st.sampled_from(["é", "中", "\ud800"]), max_size=12), st.booleans())
def test_quote_leaves_exactly_what_the_fast_check_lets_through(text: str, query: bool) -> None:
    from urllib.parse import quote

    from pipelines import metadata

    safe = metadata._QUERY_SAFE if query else metadata._PATH_SAFE
    try:
        quoted = quote(text, safe=safe)
    except UnicodeEncodeError:
        quoted = None
    assert (quoted == text) == bool(metadata._QUOTE_LEAVES[safe].fullmatch(text))
