"""Scrapy's log formatter, without a DEBUG line for every stored entry unless the log shows DEBUG."""

from __future__ import annotations

from typing import Any

from scrapy.logformatter import LogFormatter


class FeedLogFormatter(LogFormatter):
    """A crawl stores thousands of entries: a log record for each costs time even when nothing shows
    it. The summary counts them; `feedloom crawl -vv` (LOG_LEVEL DEBUG) still logs each one."""

    def __init__(self, log_items: bool = True) -> None:
        self.log_items = log_items

    @classmethod
    def from_crawler(cls, crawler: Any) -> FeedLogFormatter:
        settings = crawler.settings
        return cls(settings.getbool("LOG_ENABLED") and str(settings.get("LOG_LEVEL")).upper() in ("DEBUG", "10"))

    def scraped(self, item: Any, response: Any, spider: Any) -> Any:
        return super().scraped(item, response, spider) if self.log_items else None
