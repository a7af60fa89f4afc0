"""The `feeds` spider: fetch every due feed and hand its body to the parsers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import scrapy
from scrapy.crawler import Crawler
from scrapy.http import Response as ScrapyResponse
from twisted.python.failure import Failure

from crawler.items import EntryItem, FeedFetch
from crawler.middlewares import explain_refused_host
from crawler.outcome import Response, decide_feed_response, error_outcome
from crawler.timeutil import to_iso, utc_now
from pipelines.store import Store, default_db_path


class FeedsSpider(scrapy.Spider):
    name = "feeds"

    def __init__(self, feeds: list[dict[str, Any]] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.feed_rows = feeds

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> FeedsSpider:
        spider: FeedsSpider = super().from_crawler(crawler, *args, **kwargs)
        if spider.feed_rows is None:
            settings = crawler.settings
            store = Store.open(settings.get("FEEDLOOM_DB") or default_db_path())
            try:
                spider.feed_rows = store.due_feeds(
                    all_feeds=settings.getbool("FEEDLOOM_ALL_FEEDS"),
                    feed_ids=[int(i) for i in settings.getlist("FEEDLOOM_FEED_IDS")],
                )
            finally:
                store.close()
        return spider

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for feed in self.feed_rows or ():
            yield scrapy.Request(
                feed["url"],
                callback=self.parse,
                errback=self.failed,
                dont_filter=True,
                meta={
                    "feed": feed,
                    "validators": {"etag": feed.get("etag"), "last_modified": feed.get("last_modified")},
                    "started": time.monotonic(),
                },
            )

    def parse(self, response: ScrapyResponse, **kwargs: Any) -> Iterator[FeedFetch | EntryItem]:
        feed = response.meta["feed"]
        yield from decide_feed_response(
            feed,
            Response(
                url=response.url,
                status=response.status,
                headers={k.decode("latin-1").lower(): v[0].decode("latin-1") for k, v in response.headers.items() if v},
                body=response.body,
                redirects=tuple(response.meta.get("redirect_reasons") or ()),
            ),
            fetched_at=to_iso(utc_now()),
            duration_ms=_elapsed_ms(response.meta),
        )

    def failed(self, failure: Failure) -> Iterator[FeedFetch]:
        request = failure.request  # type: ignore[attr-defined]
        reason = _describe_failure(failure)
        if "DNS lookup failed" in reason and not self.settings.getbool("FEEDLOOM_ALLOW_PRIVATE"):
            # Twisted hides why our resolver refused the answer: ask once more, to say so.
            reason = explain_refused_host(request.url) or reason
        yield error_outcome(
            request.meta["feed"],
            reason,
            fetched_at=to_iso(utc_now()),
            duration_ms=_elapsed_ms(request.meta),
        )


def _elapsed_ms(meta: dict[str, Any]) -> int | None:
    started = meta.get("started")
    return int((time.monotonic() - started) * 1000) if started else None


def _describe_failure(failure: Failure) -> str:
    exc = failure.value
    name = type(exc).__name__
    text = str(exc).strip()
    if name == "BlockedAddress":
        return text
    if "robots.txt" in text:
        return "forbidden by robots.txt"
    if "Timeout" in name or "TimedOut" in name:
        return f"timed out: {text}" if text else "timed out"
    if name in ("DNSLookupError",):
        return f"DNS lookup failed: {text}"
    if name in ("ConnectionRefusedError",):
        return "connection refused"
    return f"{name}: {text}" if text else name
