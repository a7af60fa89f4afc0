"""Run the feeds spider in this process, with a lock so only one crawl writes a database at a time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scrapy.settings import Settings

from pipelines.lock import CrawlLocked, crawl_lock
from pipelines.store import Store

__all__ = ["CrawlConfigError", "CrawlLocked", "CrawlOptions", "run_crawl"]


class CrawlConfigError(RuntimeError):
    """A setting or a site recipe is wrong; nothing was fetched."""


@dataclass(frozen=True)
class CrawlOptions:
    db_path: str
    all_feeds: bool = False
    feed_ids: tuple[int, ...] = ()
    allow_private: bool = False
    proxy: str = ""
    verbose: int = 0
    progress: bool = True
    lock_wait_s: float = 10.0
    extra_settings: dict[str, Any] = field(default_factory=dict)


def crawl_settings(options: CrawlOptions) -> Settings:
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    settings.set("FEEDLOOM_DB", options.db_path, priority="cmdline")
    settings.set("FEEDLOOM_ALL_FEEDS", options.all_feeds, priority="cmdline")
    settings.set("FEEDLOOM_FEED_IDS", list(options.feed_ids), priority="cmdline")
    settings.set("FEEDLOOM_ALLOW_PRIVATE", options.allow_private, priority="cmdline")
    settings.set("FEEDLOOM_PROXY", options.proxy, priority="cmdline")
    settings.set("FEEDLOOM_PROGRESS", options.progress, priority="cmdline")
    if options.verbose:
        settings.set("LOG_LEVEL", "DEBUG" if options.verbose > 1 else "INFO", priority="cmdline")
    else:
        settings.set("LOG_ENABLED", False, priority="cmdline")
    for name, value in options.extra_settings.items():
        settings.set(name, value, priority="cmdline")
    return settings


def run_crawl(options: CrawlOptions) -> dict[str, Any]:
    """Crawl the due feeds (or the chosen ones) and return the `crawls` row it recorded."""
    from crawler.recipes import RecipeError, load_recipes

    settings = crawl_settings(options)
    try:
        load_recipes(settings.get("FEEDLOOM_SITES_DIR") or None)
    except RecipeError as exc:
        raise CrawlConfigError(str(exc)) from None
    from crawler.workers import ParsePool, auto_workers, will_parse

    try:
        auto_workers(settings.get("FEEDLOOM_WORKERS"), 0)
    except ValueError as exc:
        raise CrawlConfigError(str(exc)) from None
    with crawl_lock(options.db_path, options.lock_wait_s):
        store = Store.open(options.db_path)  # create and migrate before Scrapy starts
        try:
            feeds = store.due_feeds(all_feeds=options.all_feeds, feed_ids=options.feed_ids)
        finally:
            store.close()
        if not feeds:
            # The common cron case: nothing is due, and starting Scrapy would cost a second.
            return {"feeds_due": 0, "internal_errors": []}
        pool = ParsePool(auto_workers(settings.get("FEEDLOOM_WORKERS"), len(feeds)))
        if will_parse(feeds):
            # Most feeds will answer with a body to parse: the worker processes load their modules now,
            # on the other cores, while this process loads Scrapy's.
            pool.start()
        try:
            from scrapy.crawler import CrawlerProcess

            from crawler.spiders.feeds import FeedsSpider

            settings.set("LOG_INSTALL_ROOT_HANDLER", bool(options.verbose), priority="cmdline")
            settings.set("FEEDLOOM_LOCK_HELD", True, priority="cmdline")
            process = CrawlerProcess(settings)
            crawler = process.create_crawler(FeedsSpider)
            process.crawl(crawler, feeds=feeds, pool=pool)
            process.start()
        finally:
            pool.close()  # the spider closes it at its end; this is for a crawl that never got there
        stats = crawler.stats.get_stats() if crawler.stats else {}
        crawl_id = stats.get("feedloom/crawl_id")
        store = Store.open(options.db_path)
        try:
            row = store.crawl(crawl_id) if crawl_id else {}
            if row.get("status") == "running":
                # Scrapy stopped at once (a second Ctrl-C) before the crawl could record its end: what
                # was written stays, the rest is fetched next time.
                store.interrupt_crawl(crawl_id)
                row = store.crawl(crawl_id)
        finally:
            store.close()
        row["internal_errors"] = stats.get("feedloom/internal_errors") or []
        return row
