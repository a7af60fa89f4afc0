"""A DNS resolver that refuses names resolving to internal addresses, so a feed cannot point us inside."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scrapy.crawler import Crawler
from scrapy.resolver import CachingThreadedResolver
from twisted.internet.defer import Deferred
from twisted.internet.error import DNSLookupError

from crawler.middlewares import refused_address


class GuardedResolver(CachingThreadedResolver):
    """Scrapy's caching resolver, checking every answer: this is the address we really connect to."""

    allow_private = False

    @classmethod
    def from_crawler(cls, crawler: Crawler, reactor: Any) -> GuardedResolver:
        resolver: GuardedResolver = super().from_crawler(crawler, reactor)
        resolver.allow_private = crawler.settings.getbool("FEEDLOOM_ALLOW_PRIVATE")
        return resolver

    def getHostByName(self, name: str, timeout: Sequence[int] = ()) -> Deferred[str]:  # noqa: N802 - Twisted's name
        deferred = super().getHostByName(name, timeout)
        if not self.allow_private:
            deferred.addCallback(self._check, name)
        return deferred

    @staticmethod
    def _check(address: str, name: str) -> str:
        why = refused_address(address)
        if why:
            raise DNSLookupError(f"refused: {name} resolves to {address}, {why} (use --allow-private)")
        return address
