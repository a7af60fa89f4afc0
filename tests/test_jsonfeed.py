"""JSON Feed parsing with type checks."""

from __future__ import annotations

import json

import pytest

from crawler.parsers.feed import FeedError, parse_feed


def feed(**extra):
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "专栏",
        "home_page_url": "https://e.com/",
        "authors": [{"name": "王小明"}],
        "items": [
            {
                "id": "1",
                "url": "https://e.com/p/1",
                "title": "第一篇",
                "content_html": "<p>正文</p>",
                "date_published": "2022-01-28T10:00:00+08:00",
                "tags": ["电商", "产品"],
                "image": "https://img.e.com/1.jpg",
            },
            {"id": 2, "url": "https://e.com/p/2", "content_text": "段一\n\n段二", "summary": "摘要"},
        ],
    }
    doc.update(extra)
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def test_json_feed_fields():
    parsed = parse_feed(feed(), "https://e.com/feed.json")
    assert parsed.version == "json11"
    assert parsed.title == "专栏"
    assert parsed.author == "王小明"
    first, second = parsed.entries
    assert first.guid == "1" and first.link == "https://e.com/p/1"
    assert first.categories == ("电商", "产品")
    assert first.image_urls == ("https://img.e.com/1.jpg",)
    assert first.published == "2022-01-28T10:00:00+08:00"
    assert second.guid == "2"
    assert second.content == "<p>段一</p><p>段二</p>"


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"[]",
        b'{"version": "https://jsonfeed.org/version/1.1", "items": {"a": 1}}',
        b"[" * 100_000,
        b'{"a": ' * 1000 + b"1" + b"}" * 1000,
    ],
    ids=["truncated", "array", "items-not-list", "deep-array", "deep-object"],
)
def test_bad_json_feeds_are_feed_errors(body):
    with pytest.raises(FeedError):
        parse_feed(body, "https://e.com/feed.json")


def test_wrong_types_inside_items_are_skipped_or_ignored():
    body = feed(items=[1, "x", {"id": True, "title": 5, "tags": "notalist", "url": ["x"]}, {"id": "ok", "title": "好"}])
    parsed = parse_feed(body, "https://e.com/feed.json")
    assert [e.title for e in parsed.entries] == [None, "好"]
    assert parsed.entries[0].guid is None and parsed.entries[0].categories == ()
    assert len(parsed.warnings) == 2
