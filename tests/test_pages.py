"""Pure deciders for article pages: when to fetch, and how the page completes the entry."""

from __future__ import annotations

import pytest

from crawler.items import EntryItem, FeedContext, RawEntry
from crawler.pages import complete_from_page, feed_side_hash, page_failed, page_problem, page_reason
from crawler.parsers.article import ArticleFields
from crawler.recipes import Recipe

SUMMARY = RawEntry(guid="g", link="https://www.woshipm.com/pd/1.html", title="标题", summary="<p>一句话摘要……</p>")
FULL = RawEntry(guid="g", link="https://blog.example.org/p/1", title="T", content="<p>" + "word " * 400 + "</p>")
RECIPE = Recipe(name="woshipm", hosts=("woshipm.com",), content=(".article--content",), full_content=True)


@pytest.mark.parametrize(
    "raw, full_content, recipe, known, expected",
    [
        (SUMMARY, None, None, None, "the feed carries only a summary"),
        (FULL, None, None, None, None),
        (FULL, 1, None, None, "the feed is set to full content"),
        (SUMMARY, 0, None, None, None),
        (FULL, None, RECIPE, None, "the woshipm recipe asks for the page"),
        (SUMMARY, None, None, {"feed_hash": feed_side_hash(SUMMARY)}, None),
        (SUMMARY, None, None, {"feed_hash": "changed"}, "the feed carries only a summary"),
        (RawEntry(guid="g", summary="short"), None, None, None, None),
        (RawEntry(guid="g", link="javascript:alert(1)", summary="short"), None, None, None, None),
    ],
)
def test_page_reason(raw, full_content, recipe, known, expected):
    assert page_reason(raw, feed_full_content=full_content, recipe=recipe, known=known) == expected


def test_feed_side_hash_changes_with_the_date():
    changed = RawEntry(**{**SUMMARY.__dict__, "updated": "2024-01-01"})
    assert feed_side_hash(changed) != feed_side_hash(SUMMARY)


def test_complete_from_page_fills_missing_fields():
    item = EntryItem(raw=SUMMARY, context=FeedContext(feed_id=1, feed_url="https://rsshub.app/x"))
    fields = ArticleFields(
        title="页面标题", content_html="<p>全文</p>", text_length=2, author="沈砚秋",
        author_url="/u/1", author_bio="简介", author_avatar=None, categories=("产品设计",),
        published="2022-03-18T08:00:00+08:00", cover_image="https://img/1.png", language="zh-CN",
        method="recipe:woshipm",
    )
    done = complete_from_page(item, fields, "https://www.woshipm.com/pd/1.html")
    assert done.content_source == "page" and done.page_method == "recipe:woshipm"
    assert done.raw.title == "标题"  # the feed's title stands
    assert done.raw.content == "<p>全文</p>" and done.raw.author == "沈砚秋"
    assert done.raw.categories == ("产品设计",) and done.raw.published == "2022-03-18T08:00:00+08:00"
    assert done.raw.image_urls == ("https://img/1.png",) and done.raw.base_url.endswith("/pd/1.html")


def test_page_failed_keeps_the_feed_content_and_the_reason():
    item = EntryItem(raw=SUMMARY, context=FeedContext(feed_id=1, feed_url="x"))
    failed = page_failed(item, "article page answered HTTP 404")
    assert failed.raw is SUMMARY and failed.page_error == "article page answered HTTP 404"


def test_page_problem_flags_a_recipe_that_finds_too_little():
    fields = ArticleFields(
        title=None, content_html="<p>x</p>", text_length=12, author=None, author_url=None, author_bio=None,
        author_avatar=None, categories=(), published=None, cover_image=None, language=None, method="recipe:woshipm",
    )
    problem = page_problem(fields, RECIPE)
    assert problem and "only 12 characters" in problem
    assert page_problem(fields, None) is None
