"""The pure decider: one HTTP response for a feed -> a FeedFetch and the entries."""

from __future__ import annotations

import pytest

from crawler.items import EntryItem, FeedFetch
from crawler.outcome import Response, decide_feed_response, max_age, retry_after

FEED = {"id": 7, "url": "http://e.com/feed", "categories": '["产品"]'}
NOW = "2024-05-01T00:00:00Z"
RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><ttl>90</ttl>
<category>频道</category>
<item><title>a</title><link>http://e.com/a</link></item><item><title>b</title><link>http://e.com/b</link></item>
</channel></rss>""".encode()


def decide(status, body=b"", headers=None, redirects=(), url="http://e.com/feed"):
    return decide_feed_response(FEED, Response(url, status, headers or {}, body, redirects), fetched_at=NOW)


def test_ok_gives_entries_then_the_fetch_record():
    out = decide(200, RSS, {"etag": '"v1"', "last-modified": "Wed, 01 May 2024 00:00:00 GMT"})
    *entries, fetch = out
    assert all(isinstance(e, EntryItem) for e in entries) and len(entries) == 2
    assert isinstance(fetch, FeedFetch)
    assert fetch.status == "ok" and fetch.etag == '"v1"' and fetch.entries_seen == 2
    assert fetch.max_age_s == 90 * 60  # <ttl> in minutes
    assert entries[0].context.feed_categories == ("产品", "频道")


@pytest.mark.parametrize(
    "status, headers, expected",
    [
        (304, {}, ("not_modified", None, False)),
        (410, {}, ("error", None, True)),
        (429, {"retry-after": "120"}, ("error", 120, False)),
        (503, {"retry-after": "Wed, 01 May 2024 01:00:00 GMT"}, ("error", 3600, False)),
        (500, {}, ("error", None, False)),
        (404, {}, ("error", None, False)),
    ],
)
def test_statuses(status, headers, expected):
    (fetch,) = decide(status, headers=headers)
    assert (fetch.status, fetch.retry_after_s, fetch.gone) == expected
    if status >= 400:
        assert str(status) in fetch.error


def test_permanent_redirect_moves_the_feed_temporary_does_not():
    *_, moved = decide(200, RSS, redirects=(301, 308), url="http://e.com/new")
    assert moved.new_url == "http://e.com/new"
    *_, kept = decide(200, RSS, redirects=(301, 302), url="http://e.com/new")
    assert kept.new_url is None


@pytest.mark.parametrize("body", [b"", b"<html><body>Not found</body></html>", b"\x00\xff garbage", b"<rss><channel><item>"])
def test_unusable_bodies_are_recorded_errors(body):
    (fetch,) = decide(200, body)
    assert fetch.status == "error" and fetch.error


def test_cache_headers():
    assert max_age({"cache-control": "public, max-age=600"}, NOW) == 600
    assert max_age({"expires": "Wed, 01 May 2024 00:10:00 GMT"}, NOW) == 600
    assert max_age({"expires": "garbage"}, NOW) is None
    assert retry_after({"retry-after": "-5"}, NOW) is None


def test_a_feeds_own_timezone_reads_dates_without_a_zone():
    from pipelines.stages import normalize_entry

    body = (
        b"<rss version='2.0'><channel><title>T</title><item><title>a</title><link>http://e.com/a</link>"
        b"<pubDate>2024-01-01 10:00:00</pubDate></item></channel></rss>"
    )
    for timezone, expected in ((None, "2024-01-01T10:00:00Z"), ("Asia/Shanghai", "2024-01-01T02:00:00Z"), ("-05:00", "2024-01-01T15:00:00Z")):
        feed = {**FEED, "timezone": timezone}
        entry_item, _ = decide_feed_response(feed, Response("http://e.com/feed", 200, {}, body), fetched_at=NOW)
        assert normalize_entry(entry_item.raw, entry_item.context).published_at == expected
