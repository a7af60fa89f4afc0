"""A DNS resolver that refuses names resolving to internal addresses, so a feed cannot point us inside."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any
from urllib.parse import urlsplit

from scrapy.crawler import Crawler
from scrapy.resolver import CachingThreadedResolver
from twisted.internet.defer import Deferred
from twisted.internet.error import DNSLookupError

from crawler.addresses import normalize_host, refused_address


class GuardedResolver(CachingThreadedResolver):
    """Scrapy's caching resolver, checking every answer: this is the address we really connect to.

    Twisted asks it for IPv4 literals and for names alike, so a DNS answer that changes between
    the middleware's check and the connection (DNS rebinding) is caught here.
    """

    allow_private = False
    exempt: Collection[str] = frozenset()

    @classmethod
    def from_crawler(cls, crawler: Crawler, reactor: Any) -> GuardedResolver:
        resolver: GuardedResolver = super().from_crawler(crawler, reactor)
        settings = crawler.settings
        resolver.allow_private = settings.getbool("FEEDLOOM_ALLOW_PRIVATE")
        exempt = {normalize_host(h) for h in settings.getlist("FEEDLOOM_ALLOWED_HOSTS")}
        proxy_host = urlsplit(settings.get("FEEDLOOM_PROXY") or "").hostname
        if proxy_host:
            # The proxy the user configured is where we connect, not where a feed points us.
            exempt.add(normalize_host(proxy_host))
        resolver.exempt = frozenset(exempt)
        return resolver

    def getHostByName(self, name: str, timeout: Sequence[int] = ()) -> Deferred[str]:  # noqa: N802 - Twisted's name
        deferred = super().getHostByName(name, timeout)
        if not self.allow_private and normalize_host(name) not in self.exempt:
            deferred.addCallback(self._check, name)
        return deferred

    @staticmethod
    def _check(address: str, name: str) -> str:
        why = refused_address(address)
        if why:
            raise DNSLookupError(f"refused: {name} resolves to {address}, {why} (use --allow-private)")
        return address
