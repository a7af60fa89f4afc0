"""Tests for crawler.parsers.article: saved pages against their expected JSON, the fallback, encodings, garbage."""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawler.cli_recipes import (
    DEFAULT_PAGES_DIR,
    compare_snapshot,
    expected_path,
    extract_saved_page,
    snapshot,
)
from crawler.parsers.article import (
    FALLBACK_MAX_ELEMENTS,
    MAX_PAGE_BYTES,
    ArticleFields,
    ExtractError,
    extract_article,
    looks_like_summary,
    visible_text,
)
from crawler.recipes import Recipe, load_recipes

ROOT = Path(__file__).resolve().parent.parent
SAVED_PAGES = sorted(DEFAULT_PAGES_DIR.glob("*/*.html"))
DEMO_ARTICLES = sorted((ROOT / "data" / "demo" / "www.woshipm.com").glob("*/[0-9]*.html"))
RECIPES = load_recipes()
HTML = {"content-type": "text/html; charset=utf-8"}


def recipe(**changes: object) -> Recipe:
    base = Recipe(name="test", hosts=("example.com",), content=(".post-body",))
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def page(body: str, head: str = "", lang: str = "en") -> bytes:
    return f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">{head}</head><body>{body}</body></html>'.encode()


LONG_TEXT = "<p>" + "A sentence long enough to count as an article body in any reader. " * 6 + "</p>"


# --- golden files: tests/fixtures/sites/<recipe>/<page>.html beside <page>.expected.json ---------


@pytest.mark.parametrize("saved", SAVED_PAGES, ids=[f"{p.parent.name}/{p.name}" for p in SAVED_PAGES])
def test_saved_page_matches_expected_json(saved: Path) -> None:
    # Regenerate with `feedloom recipes regenerate` (or `python -m crawler.cli_recipes regenerate`), then read the diff.
    expected = json.loads(expected_path(saved).read_text(encoding="utf-8"))
    url, _, fields = extract_saved_page(saved, RECIPES)
    assert compare_snapshot(expected, snapshot(fields, url)) == []


@pytest.mark.parametrize("saved", SAVED_PAGES, ids=[f"{p.parent.name}/{p.name}" for p in SAVED_PAGES])
def test_saved_page_is_read_by_its_own_recipe(saved: Path) -> None:
    _, found, fields = extract_saved_page(saved, RECIPES)
    if saved.parent.name == "_generic":
        assert (found, fields.method) == (None, "fallback:readability")
    else:
        assert found is not None and fields.method == f"recipe:{saved.parent.name}"


def test_every_recipe_has_a_saved_page() -> None:
    assert {r.name for r in RECIPES} <= {p.parent.name for p in SAVED_PAGES}


@pytest.mark.parametrize("demo", DEMO_ARTICLES, ids=[f"{p.parent.name}/{p.name}" for p in DEMO_ARTICLES])
def test_woshipm_recipe_reads_the_demo_site(demo: Path) -> None:
    url = "http://www.woshipm.com/" + demo.relative_to(demo.parents[1]).as_posix()
    woshipm = next(r for r in RECIPES if r.name == "woshipm")
    fields = extract_article(demo.read_bytes(), url, HTML, woshipm)
    assert fields.method == "recipe:woshipm"
    assert fields.author and fields.author_url and fields.categories and fields.published
    assert fields.text_length >= woshipm.min_text_chars
    assert "support-author" not in (fields.content_html or "")


# --- the recipe path -----------------------------------------------------------------------------


def test_recipe_selectors_read_text_meta_href_and_lazy_images() -> None:
    body = page(
        '<h2 class="t"> The  title </h2><a class="who" href="/u/7">Ann</a><span class="bio">Writes.</span>'
        '<img class="face" src="data:image/gif;base64,R0lGOD" data-original="/a/7.jpg">'
        '<div class="tags"><a>x</a><a>y</a><a>x</a></div><abbr class="when" title="2024-01-02T03:04:05+08:00">Jan 2</abbr>'
        f'<div class="post-body">{LONG_TEXT}<div class="share">Share!</div></div>',
        head='<meta property="og:image" content="/cover.png">',
    )
    fields = extract_article(
        body,
        "https://www.example.com/p/1.html",
        HTML,
        recipe(
            title=(".t",), author=(".who",), author_url=(".who",), author_bio=(".bio",), author_avatar=(".face",),
            categories=(".tags a",), published=(".when",), cover=("meta[property='og:image']",), remove=(".share",),
            lazy_attributes=("data-original",),
        ),
    )
    assert (fields.title, fields.author, fields.author_url, fields.author_bio) == (
        "The title", "Ann", "https://www.example.com/u/7", "Writes."
    )
    assert fields.author_avatar == "https://www.example.com/a/7.jpg"
    assert fields.categories == ("x", "y")
    assert fields.published == "2024-01-02T03:04:05+08:00"
    assert fields.cover_image == "https://www.example.com/cover.png"
    assert "Share!" not in (fields.content_html or "") and fields.method == "recipe:test"


def test_recipe_falls_back_to_metadata_field_by_field() -> None:
    head = '<meta name="author" content="Meta Author"><meta property="article:published_time" content="2024-05-06">'
    fields = extract_article(page(f'<div class="post-body">{LONG_TEXT}</div>', head), "https://example.com/a", HTML,
                             recipe(author=(".nowhere",)))
    assert (fields.author, fields.published) == ("Meta Author", "2024-05-06")


def test_recipe_whose_body_selector_matches_nothing_falls_back_to_readability() -> None:
    body = page(f'<article><h1>Title</h1>{LONG_TEXT}{LONG_TEXT}<div class="ad">Buy</div></article>')
    fields = extract_article(body, "https://example.com/a", HTML, recipe(content=(".renamed-by-redesign",), remove=(".ad",)))
    assert fields.method == "fallback:readability"
    assert "A sentence long enough" in (fields.content_html or "") and "Buy" not in (fields.content_html or "")


def test_recipe_body_that_is_empty_after_removal_tries_the_next_selector() -> None:
    body = page(f'<div class="a"><div class="w">widget</div></div><div class="b">{LONG_TEXT}</div>')
    fields = extract_article(body, "https://example.com/a", HTML, recipe(content=(".a", ".b"), remove=(".w",)))
    assert fields.method == "recipe:test" and 'class="b"' in (fields.content_html or "")


def test_relative_urls_become_absolute_against_base_href() -> None:
    body = page(
        f'<div class="post-body">{LONG_TEXT}<a href="../x.html">x</a><img src="i.png" srcset="i.png 1x, /w_2,q_8/i.png 2x">'
        '<img data-src="lazy.png"><a href="#top">top</a></div>',
        head='<base href="https://cdn.example.com/posts/">',
    )
    html = extract_article(body, "https://example.com/a/b", HTML, recipe()).content_html or ""
    assert 'href="https://cdn.example.com/x.html"' in html
    assert 'srcset="https://cdn.example.com/posts/i.png 1x, https://cdn.example.com/w_2,q_8/i.png 2x"' in html
    assert 'data-src="https://cdn.example.com/posts/lazy.png"' in html and 'href="#top"' in html


def test_bad_selector_in_a_hand_made_recipe_is_an_extract_error() -> None:
    with pytest.raises(ExtractError, match="bad selector"):
        extract_article(page(LONG_TEXT), "https://example.com/", HTML, recipe(content=("div[",)))


def test_script_and_style_text_does_not_count() -> None:
    body = page(f'<div class="post-body"><script>var x = "{"s" * 500}";</script><style>p{{}}</style>{LONG_TEXT}</div>')
    fields = extract_article(body, "https://example.com/", HTML, recipe())
    assert fields.text_length == len(visible_text(LONG_TEXT))


# --- the generic fallback ------------------------------------------------------------------------


def test_fallback_reads_json_ld_author_date_image_and_keywords() -> None:
    saved = DEFAULT_PAGES_DIR / "_generic" / "blog.html"
    fields = extract_article(saved.read_bytes(), "https://blog.example.org/2023/04/notes-on-pricing/")
    assert fields.method == "fallback:readability"
    assert (fields.author, fields.author_url) == ("Ada Brennan", "https://blog.example.org/about/")
    assert fields.published == "2023-04-11T07:15:00+01:00"
    assert fields.cover_image == "https://blog.example.org/wp-content/uploads/2023/04/price-tags.jpg"
    assert fields.categories == ("Business", "pricing", "small business", "saas")
    assert "Recent posts" not in (fields.content_html or "") and "Useful, thanks" not in (fields.content_html or "")
    assert "We’ve changed our prices" in (fields.content_html or "")  # windows-1252 declared in <meta charset>


def test_fallback_reads_open_graph_and_article_tags() -> None:
    head = (
        '<meta property="og:title" content="OG title"><meta property="og:image" content="//img.example.net/c.jpg">'
        '<meta property="article:published_time" content="2024-02-03T04:05:06Z">'
        '<meta property="article:tag" content="one"><meta property="article:tag" content="two">'
        '<meta name="author" content="Bea">'
    )
    fields = extract_article(page(f"<article>{LONG_TEXT}{LONG_TEXT}</article>", head), "https://example.com/x")
    assert (fields.title, fields.author, fields.published) == ("OG title", "Bea", "2024-02-03T04:05:06Z")
    assert fields.cover_image == "https://img.example.net/c.jpg" and fields.categories == ("one", "two")


def test_fallback_json_ld_author_may_be_a_list_or_a_string() -> None:
    ld = '<script type="application/ld+json">[{"@type": ["NewsArticle"], "author": "Cy", "image": ["/i.jpg"]}]</script>'
    fields = extract_article(page(f"<article>{LONG_TEXT}</article>", ld), "https://example.com/x")
    assert (fields.author, fields.cover_image) == ("Cy", "https://example.com/i.jpg")


def test_broken_json_ld_is_ignored() -> None:
    ld = '<script type="application/ld+json">{"@type": "Article", "author": </script>'
    assert extract_article(page(f"<article>{LONG_TEXT}</article>", ld), "https://example.com/x").author is None


def test_fallback_on_a_page_without_article_text_is_an_extract_error() -> None:
    with pytest.raises(ExtractError, match="no article body"):
        extract_article(page('<nav><a href="/">Home</a> <a href="/about">About</a></nav>'), "https://example.com/")


def test_language_comes_from_html_lang_then_headers() -> None:
    assert extract_article(page(f"<article>{LONG_TEXT}</article>", lang="de-AT"), "https://e.com/").language == "de-AT"
    body = page(f"<article>{LONG_TEXT}</article>").replace(b' lang="en"', b"")
    assert extract_article(body, "https://e.com/", {"Content-Language": "fr"}).language == "fr"


# --- decoding ------------------------------------------------------------------------------------

CHINESE = "<article><p>" + "这是一段用来测试编码的中文正文，内容足够长，可以被当作文章。" * 6 + "</p></article>"


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (f'<html><head><meta charset="gb2312"></head><body>{CHINESE}</body></html>'.encode("gb18030"), {}),
        (f'<html><head><meta http-equiv="Content-Type" content="text/html; charset=GBK"></head><body>{CHINESE}</body></html>'.encode("gb18030"), {}),
        (f"<html><body>{CHINESE}</body></html>".encode("gb18030"), {"Content-Type": "text/html; charset=gb2312"}),
        (f'<html><head><meta charset="utf-8"></head><body>{CHINESE}</body></html>'.encode("gb18030"), {"content-type": "text/html; charset=GBK"}),
        (f"<html><body>{CHINESE}</body></html>".encode("gb18030"), {}),  # undeclared, not UTF-8: GB18030 is tried
        (f"<html><body>{CHINESE}</body></html>".encode("utf-16"), {}),  # a BOM wins over everything
        (b"\xef\xbb\xbf" + f'<meta charset="gbk">{CHINESE}'.encode(), {}),
    ],
    ids=["meta-gb2312", "http-equiv-gbk", "header-gb2312", "header-beats-meta", "sniffed-gb18030", "utf-16-bom", "utf-8-bom"],
)
def test_encodings(body: bytes, headers: dict[str, str]) -> None:
    fields = extract_article(body, "https://example.cn/a", headers)
    assert "用来测试编码的中文正文" in (fields.content_html or "")


def test_scrapy_style_bytes_headers_are_understood() -> None:
    body = f"<html><body>{CHINESE}</body></html>".encode("gb18030")
    headers = {b"Content-Type": [b"text/html; charset=GBK"], b"Content-Language": [b"zh-CN"]}
    fields = extract_article(body, "https://example.cn/a", headers)  # type: ignore[arg-type]
    assert "中文正文" in (fields.content_html or "") and fields.language == "zh-CN"


def test_unknown_charset_label_is_ignored() -> None:
    body = f'<html><head><meta charset="x-no-such-charset"></head><body>{CHINESE}</body></html>'.encode()
    assert "中文正文" in (extract_article(body, "https://example.cn/a").content_html or "")


# --- garbage in: ExtractError and nothing else -------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"", {}),
        (b"   \n\t ", {}),
        (b"\x00" * 4096, {}),
        (b"\x89PNG\r\n\x1a\n" + b"\x00\x01\x02" * 200, {"content-type": "image/png"}),
        (b"%PDF-1.7\n" + bytes(range(256)) * 8, {"content-type": "application/pdf"}),
        (bytes(range(256)) * 64, {}),
        (b"<html></html>", {}),
        (b"<html><body><p>too short</p></body></html>", {}),
        (b"<?xml version='1.0' encoding='utf-8'?><rss><channel></channel></rss>", {}),
        (b"<div>" * 100_000, {}),
        (b"a" * (MAX_PAGE_BYTES + 1), {}),
    ],
    ids=["empty", "whitespace", "nul", "png", "pdf", "binary", "empty-html", "tiny", "xml", "deep", "huge"],
)
def test_garbage_raises_extract_error(body: bytes, headers: dict[str, str]) -> None:
    with pytest.raises(ExtractError):
        extract_article(body, "https://example.com/x", headers)


@pytest.mark.parametrize(
    "body",
    [
        b"<" * 10_000,
        b"<div>" * 3000 + b"text " * 100,
        b"<table>" * 2000 + b"<td>cell text that goes on</td>" * 50,
        b"<p>" + "é".encode("latin-1") * 500 + b"</p>",
        ("<p>" + "长文" * 200_000 + "</p>").encode("utf-8"),
    ],
    ids=["angles", "deep-with-text", "nested-tables", "latin-1-undeclared", "big-cjk"],
)
def test_odd_pages_give_fields_or_extract_error(body: bytes) -> None:
    try:
        fields = extract_article(body, "https://example.com/x")
    except ExtractError as exc:
        assert str(exc)
    else:
        assert fields.text_length > 0 and fields.content_html


def test_fallback_refuses_pages_with_too_many_elements() -> None:
    body = page("<div><p>word word word</p></div>" * (FALLBACK_MAX_ELEMENTS // 2))
    with pytest.raises(ExtractError, match="too many for the generic extractor"):
        extract_article(body, "https://example.com/x")


def test_not_bytes_is_an_extract_error() -> None:
    with pytest.raises(ExtractError, match="bytes"):
        extract_article("<p>text</p>", "https://example.com/")  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.one_of(
        st.binary(max_size=3000),
        st.text(max_size=2000).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.lists(st.sampled_from(["<p>", "</p>", "<div class='post-body'>", "</div>", "<script>", "<meta charset='gbk'>",
                                  "<!--", "-->", "&amp;", "&#0;", "正文", "word ", "\x00", "<img src='http://[::1'>",
                                  "<a href='http://[bad'>", '<script type="application/ld+json">{"@type":"Article"', "<base href=':'>"]),
                 max_size=300).map(lambda parts: "".join(parts).encode("utf-8", "surrogatepass")),
    ),
    with_recipe=st.booleans(),
)
def test_any_bytes_give_fields_or_extract_error(body: bytes, with_recipe: bool) -> None:
    try:
        fields = extract_article(body, "https://example.com/x", None, recipe() if with_recipe else None)
    except ExtractError as exc:
        assert str(exc)
    else:
        assert isinstance(fields, ArticleFields) and fields.text_length > 0


# --- looks_like_summary ----------------------------------------------------------------------------

LONG_CJK = "<p>" + "产品经理需要把用户的问题讲清楚，再去讨论方案。" * 30 + "</p>"
LONG_LATIN = "<p>" + "The quick brown fox jumps over the lazy dog again. " * 20 + "</p>"


@pytest.mark.parametrize(
    ("content_html", "summary", "expected"),
    [
        (None, None, True),
        ("", "   ", True),
        (None, "<p>A one-line teaser.</p>", True),
        (None, LONG_LATIN, False),  # some feeds put the whole post in <description>
        (LONG_LATIN, "short", False),
        (LONG_CJK, None, False),
        ("<p>" + "产品经理需要把问题讲清楚。" * 10 + "</p>", None, True),  # 130 CJK characters
        (LONG_LATIN[:-4] + " Read more »</p>", None, True),
        (LONG_LATIN[:-4] + " Continue reading →</p>", None, True),
        (LONG_LATIN[:-4] + " [&hellip;]</p>", None, True),
        (LONG_LATIN[:-4] + "...</p>", None, True),
        (LONG_CJK[:-4] + "……</p>", None, True),
        (LONG_CJK[:-4] + "<a href='/x'>阅读全文</a></p>", None, True),
        (LONG_LATIN + "<p>Thanks for reading.</p>", None, False),
        ("<p>" + "word " * 119 + "</p>", None, True),
        ("<p>" + "word " * 121 + "</p>", None, False),
    ],
)
def test_looks_like_summary(content_html: str | None, summary: str | None, expected: bool) -> None:
    assert looks_like_summary(content_html, summary) is expected


WIDGETS = "<div class='share'>" + "分享到微信、微博、知乎和豆瓣，" * 40 + "</div>"


@pytest.mark.parametrize(
    ("content_html", "text", "expected"),
    [
        (LONG_LATIN, None, False),  # no cleaned text: the raw body decides
        (LONG_LATIN, "The quick brown fox. " * 40, False),
        (LONG_LATIN[:-4] + " <a class='more-link'>Continue reading →</a></p>", "The quick brown fox. " * 40, True),
        (LONG_CJK[:-4] + "……</p>", "产品经理需要把用户的问题讲清楚。" * 30 + "……", True),
        # A short post that its widgets made long enough: still what the raw body says, not a summary
        ("<p>" + "产品经理需要把问题讲清楚。" * 20 + "</p>" + WIDGETS, "产品经理需要把问题讲清楚。" * 20, False),
        ("<p>" + "产品经理需要把问题讲清楚。" * 10 + "</p>", "产品经理需要把问题讲清楚。" * 10, True),
    ],
)
def test_looks_like_summary_with_the_cleaned_text(content_html: str, text: str | None, expected: bool) -> None:
    assert looks_like_summary(content_html, None, text=text) is expected
    assert looks_like_summary(content_html, None) is expected  # the same answer as from the raw body


def test_a_long_cleaned_text_spares_the_raw_body_a_parse(monkeypatch) -> None:
    from crawler.parsers import article

    monkeypatch.setattr(article, "visible_text", lambda html: pytest.fail("parsed the raw body"))
    assert looks_like_summary(LONG_CJK, None, text="产品经理需要把用户的问题讲清楚，再去讨论方案。" * 30) is False


@pytest.mark.parametrize(
    ("html", "text"),
    [
        (None, ""),
        ("", ""),
        ("plain", "plain"),
        ("<p>a</p><p>b</p>", "a b"),
        ("<p>hel<b>lo</b></p><script>x()</script><!-- c -->", "hello"),
        ("<div>  many \n\n spaces </div>", "many spaces"),
    ],
)
def test_visible_text(html: str | None, text: str) -> None:
    assert visible_text(html) == text


def test_article_module_is_pure() -> None:
    tree = ast.parse((ROOT / "crawler" / "parsers" / "article.py").read_text(encoding="utf-8"))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not imported & {"scrapy", "sqlite3", "sqlite_utils", "twisted"}


@pytest.mark.parametrize("html", ["<p>a</p>&#x1;b", "<div><p>x</p>&#xfffe;&#2;</div>"])
def test_references_to_forbidden_characters_do_not_break_the_summary_check(html):
    assert "\x01" not in visible_text(html)
    assert looks_like_summary(html, None) is True
