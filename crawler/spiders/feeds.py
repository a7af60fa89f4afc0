"""The `feeds` spider: fetch every due feed, hand its body to the parsers, follow summaries to their pages."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import scrapy
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.http import Response as ScrapyResponse
from twisted.python.failure import Failure

from crawler.addresses import explain_refused_host
from crawler.items import EntryBatch, EntryItem, FeedFetch
from crawler.outcome import Response, error_outcome
from crawler.pages import complete_from_page, page_failed, page_problem
from crawler.recipes import Recipe, load_recipes, recipe_for
from crawler.signals import feeds_all_requested
from crawler.timeutil import to_iso, utc_now
from crawler.workers import (
    FeedJob,
    ParsePool,
    WorkerCrashed,
    auto_workers,
    limit_malloc_arenas,
)
from pipelines.lock import acquire_lock, release_lock
from pipelines.store import Store, default_db_path

if TYPE_CHECKING:
    from crawler.parsers.article import ArticleFields
    from pipelines.html import HtmlRules


_FEED_FIELDS = ("id", "url", "title", "language", "timezone", "categories", "full_content", "etag", "last_modified")


class FeedsSpider(scrapy.Spider):
    name = "feeds"

    def __init__(
        self, feeds: list[dict[str, Any]] | None = None, pool: ParsePool | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.feed_rows = feeds
        self.given_pool = pool  # started by `feedloom crawl` before Scrapy loaded (see run_crawl)
        self.recipes: tuple[Recipe, ...] = ()
        self.reader: Store | None = None
        # Pages in flight, and the entries waiting on each; a feed's fetch record waits for its pages.
        self.waiting: dict[str, list[EntryItem]] = {}
        self.pages_pending: dict[int, int] = {}
        self.held_fetches: dict[int, FeedFetch] = {}
        self.lock: Any = None
        self.pages_asked: dict[int, int] = {}
        self.max_pages_per_feed = 200
        self.html_rules: HtmlRules | None = None  # None: the default rules
        self.pool = ParsePool(0)
        self.batch_items = False

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> FeedsSpider:
        spider: FeedsSpider = super().from_crawler(crawler, *args, **kwargs)
        settings = crawler.settings
        limit_malloc_arenas(settings.getint("FEEDLOOM_MALLOC_ARENAS", 2))
        spider.recipes = load_recipes(settings.get("FEEDLOOM_SITES_DIR") or None)
        spider.max_pages_per_feed = settings.getint("FEEDLOOM_MAX_PAGES_PER_FEED", 200)
        db_path = settings.get("FEEDLOOM_DB") or default_db_path()
        if not settings.getbool("FEEDLOOM_LOCK_HELD"):
            # `scrapy crawl feeds` and scrapyd jobs take the lock `feedloom crawl` takes before starting Scrapy.
            spider.lock = acquire_lock(db_path, settings.getfloat("FEEDLOOM_LOCK_WAIT", 10.0))
        # A reading connection of the spider's own, for what each feed's entries looked like last time;
        # the store pipeline holds the writing one.
        spider.reader = Store.open(db_path)
        if spider.feed_rows is None:
            spider.feed_rows = spider.reader.due_feeds(
                all_feeds=settings.getbool("FEEDLOOM_ALL_FEEDS"),
                feed_ids=[int(i) for i in settings.getlist("FEEDLOOM_FEED_IDS")],
            )
        # Only what a feed's request and its parsing read: 5,000 full rows would hold 8 MB for the whole crawl.
        spider.feed_rows = [{k: row.get(k) for k in _FEED_FIELDS} for row in spider.feed_rows]
        rules_path = settings.get("FEEDLOOM_HTML_RULES")
        if rules_path:
            # A broken rules file fails here, before any fetch.
            from pipelines.html import load_html_rules

            spider.html_rules = load_html_rules(rules_path)
        if spider.given_pool is not None:
            spider.pool = spider.given_pool
        else:
            spider.pool = ParsePool(auto_workers(settings.get("FEEDLOOM_WORKERS"), len(spider.feed_rows)))
        spider.batch_items = batches_allowed(settings)
        return spider

    def closed(self, reason: str) -> None:
        self.pool.close()
        if self.reader is not None:
            self.reader.close()
            self.reader = None
        if self.lock is not None:
            release_lock(self.lock)
            self.lock = None

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for feed in self.feed_rows or ():
            # Scrapy takes start requests as fast as they come and queues them all: 5,000 feeds' requests
            # held some 20 MB from the first second. So while the downloader is full, wait until the
            # scheduler has run dry before handing over the next feed.
            while self._engine_busy():
                await self.crawler.signals.wait_for(signals.scheduler_empty)
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
        if getattr(self, "crawler", None) is not None:
            self.crawler.signals.send_catch_log(feeds_all_requested)

    def _engine_busy(self) -> bool:
        engine = getattr(getattr(self, "crawler", None), "engine", None)
        return bool(engine is not None and engine.needs_backout())

    async def parse(self, response: ScrapyResponse, **kwargs: Any) -> AsyncIterator[FeedFetch | EntryItem | scrapy.Request]:
        feed = response.meta["feed"]
        # Loaded per feed as its response arrives: memory stays flat however many feeds are due.
        known = self.reader.known_feed_hashes([feed["id"]]) if response.status == 200 and self.reader is not None else {}
        job = FeedJob(
            feed=feed,
            response=Response(
                url=response.url,
                status=response.status,
                headers=_headers(response),
                body=response.body,
                redirects=tuple(response.meta.get("redirect_reasons") or ()),
            ),
            fetched_at=to_iso(utc_now()),
            duration_ms=_elapsed_ms(response.meta),
            known_hashes={key: value for (_, key), value in known.items()},
            recipes=self.recipes,
            rules=self.html_rules,
            keep_raw=not self.batch_items,
        )
        try:
            routed, fetch = await self.pool.run(job)
        except WorkerCrashed as exc:
            yield error_outcome(feed, str(exc), fetched_at=job.fetched_at, duration_ms=job.duration_ms)
            return
        batch: list[EntryItem] = []
        for entry in routed:
            for out in self._route_entry(feed, entry.item, entry.page_reason):
                if self.batch_items and isinstance(out, EntryItem) and out.normalized:
                    batch.append(out)  # with only its raw entry's link and guid (FeedJob.keep_raw)
                else:
                    yield out
        if batch:
            yield EntryBatch(tuple(batch))
        if self.pages_pending.get(feed["id"]):
            self.held_fetches[feed["id"]] = fetch
        else:
            yield fetch

    def _route_entry(self, feed: dict[str, Any], item: EntryItem, reason: str | None) -> Iterator[EntryItem | scrapy.Request]:
        if reason is None:
            yield item
            return
        raw = item.raw
        assert raw.link is not None
        recipe = recipe_for(raw.link, self.recipes)
        asked = self.pages_asked.get(feed["id"], 0)
        if asked >= self.max_pages_per_feed:
            # A feed listing thousands of summaries must not hold the crawl for hours; the rest wait
            # for the next crawl (no feed hash is stored, so they count as changed then).
            yield replace(
                item,
                feed_hash=None,
                page_error=f"article page deferred: more than {self.max_pages_per_feed} pages for this feed in one crawl",
            )
            return
        self.pages_asked[feed["id"]] = asked + 1
        self.pages_pending[feed["id"]] = self.pages_pending.get(feed["id"], 0) + 1
        if raw.link in self.waiting:
            self.waiting[raw.link].append(item)  # the same page for another feed: fetch it once
            return
        self.waiting[raw.link] = [item]
        yield scrapy.Request(
            raw.link,
            callback=self.parse_page,
            errback=self.page_error,
            dont_filter=True,
            priority=10,  # finish started feeds before starting new ones
            meta={"page_of": raw.link, "recipe": recipe, "reason": reason},
        )

    def parse_page(self, response: ScrapyResponse, **kwargs: Any) -> Iterator[EntryItem | FeedFetch]:
        from crawler.parsers.article import (  # lxml.html, readability: only with pages
            ExtractError,
            extract_article,
        )

        link = response.meta["page_of"]
        self.crawler.stats.inc_value("feedloom/pages_fetched")
        if response.status >= 400:
            yield from self._release(link, error=f"article page answered HTTP {response.status}")
            return
        try:
            fields = extract_article(response.body, response.url, _headers(response), response.meta.get("recipe"))
        except ExtractError as exc:
            yield from self._release(link, error=f"article page not extracted: {exc}")
            return
        problem = page_problem(fields, response.meta.get("recipe"))
        if problem:
            yield from self._release(link, error=problem)
            return
        yield from self._release(link, fields=fields, page_url=response.url)

    def page_error(self, failure: Failure) -> Iterator[EntryItem | FeedFetch]:
        request = failure.request  # type: ignore[attr-defined]
        yield from self._release(request.meta["page_of"], error=f"article page not fetched: {self._reason(failure)}")

    def _release(
        self, link: str, *, fields: ArticleFields | None = None, page_url: str = "", error: str | None = None
    ) -> Iterator[EntryItem | FeedFetch]:
        for item in self.waiting.pop(link, []):
            if fields is not None:
                yield complete_from_page(item, fields, page_url)
            else:
                self.crawler.stats.inc_value("feedloom/pages_failed")
                yield page_failed(item, error or "article page failed")
            feed_id = item.context.feed_id
            if feed_id is None:
                continue
            self.pages_pending[feed_id] -= 1
            if self.pages_pending[feed_id] == 0 and feed_id in self.held_fetches:
                yield self.held_fetches.pop(feed_id)

    def failed(self, failure: Failure) -> Iterator[FeedFetch]:
        request = failure.request  # type: ignore[attr-defined]
        yield error_outcome(
            request.meta["feed"],
            self._reason(failure),
            fetched_at=to_iso(utc_now()),
            duration_ms=_elapsed_ms(request.meta),
        )

    def _reason(self, failure: Failure) -> str:
        reason = _describe_failure(failure)
        if "DNS lookup failed" in reason and not self.settings.getbool("FEEDLOOM_ALLOW_PRIVATE"):
            # Twisted hides why our resolver refused the answer: ask once more, to say so.
            reason = explain_refused_host(failure.request.url) or reason  # type: ignore[attr-defined]
        return reason


# What `feedloom` runs (crawler/settings.py). With exactly these pipelines and extensions, no spider
# middleware of the user's and no feed export, a feed's normalized entries travel as one EntryBatch
# item. Anything else that sees items (a pipeline, a spider middleware, an extension listening to
# item_scraped, an `-o` export, an item count to close at) gets one EntryItem per entry, as always.
OWN_PIPELINES = frozenset(
    {"pipelines.stages.MetadataPipeline", "pipelines.stages.HtmlPipeline", "pipelines.stages.DedupePipeline",
     "pipelines.store.StorePipeline"}
)
OWN_EXTENSIONS = frozenset({"crawler.progress.Progress"})


def _enabled(components: Any) -> set[str]:
    return {
        path if isinstance(path, str) else f"{path.__module__}.{path.__qualname__}"
        for path, order in components.items()
        if order is not None
    }


def batches_allowed(settings: Any) -> bool:
    return (
        _enabled(settings.getwithbase("ITEM_PIPELINES")) == OWN_PIPELINES
        and _enabled(settings.getdict("EXTENSIONS")) <= OWN_EXTENSIONS
        and not _enabled(settings.getdict("SPIDER_MIDDLEWARES"))
        and not settings.getdict("FEEDS")
        and not settings.get("FEED_URI")
        and not settings.getint("CLOSESPIDER_ITEMCOUNT")
    )


def _headers(response: ScrapyResponse) -> dict[str, str]:
    """Response headers as plain lower-case strings, first value of each, for the pure parsers."""
    return {k.decode("latin-1").lower(): v[0].decode("latin-1") for k, v in response.headers.items() if v}


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
