"""A one-line progress display on the terminal while a crawl runs (Scrapy's log is only shown with -v)."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from scrapy import signals
from scrapy.crawler import Crawler

from crawler.items import EntryBatch, EntryItem, FeedFetch


class Progress:
    def __init__(self, total: int, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled and self.stream.isatty()
        self.total = total
        self.feeds = 0
        self.failed = 0
        self.entries = 0
        self.errors: list[str] = []
        self._last = 0.0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Progress:
        ext = cls(0, enabled=crawler.settings.getbool("FEEDLOOM_PROGRESS", True))
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(ext.item_error, signal=signals.item_error)
        crawler.signals.connect(ext.spider_error, signal=signals.spider_error)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        ext.stats = crawler.stats
        return ext

    def spider_opened(self, spider: Any) -> None:
        self.total = len(getattr(spider, "feed_rows", None) or [])
        self._draw(force=True)

    def item_scraped(self, item: Any, **kwargs: Any) -> None:
        if isinstance(item, FeedFetch):
            self.feeds += 1
            self.failed += item.status == "error"
        elif isinstance(item, EntryItem):
            self.entries += 1
        elif isinstance(item, EntryBatch):
            self.entries += len(item.items)
        self._draw()

    def item_error(self, item: Any, response: Any, spider: Any, failure: Any) -> None:
        self._record(f"could not store an item from {getattr(response, 'url', '?')}: {failure.getErrorMessage()}")

    def spider_error(self, failure: Any, response: Any, spider: Any) -> None:
        self._record(f"error handling {getattr(response, 'url', '?')}: {failure.getErrorMessage()}")

    def spider_closed(self, spider: Any) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
        self.stats.set_value("feedloom/internal_errors", list(self.errors))

    def _record(self, message: str) -> None:
        self.errors.append(message)

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        self.stream.write(
            f"\r\x1b[2Kcrawling: {self.feeds}/{self.total} feeds · {self.entries} entries · {self.failed} failed"
        )
        self.stream.flush()
