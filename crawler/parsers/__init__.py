"""Pure parsers: feed bytes -> raw entries; article HTML -> fields."""

from __future__ import annotations

from crawler.parsers.feed import FeedError, parse_feed

__all__ = ["FeedError", "parse_feed"]
