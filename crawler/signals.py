"""feedloom's own Scrapy signals (sent with `crawler.signals.send_catch_log`)."""

from __future__ import annotations

feeds_all_requested = object()
"""The feeds spider has handed Scrapy its last feed: what remains of the crawl is the feeds in flight
(and the article pages they ask for). The store indexes each batch for search from then on, so that
little is left to index once the last feed is in (see StorePipeline)."""
