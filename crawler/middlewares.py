"""Downloader middlewares for HTTP concerns only: the demo proxy, the address guard, credentials on redirects, conditional GET."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import DownloadCancelledError, IgnoreRequest

from crawler.addresses import (  # noqa: F401 - re-exported: the guard's vocabulary lives beside it
    explain_refused_host,
    legacy_ipv4,
    normalize_host,
    refused_address,
    refused_host,
)


class ProxyMiddleware:
    """Route every request through FEEDLOOM_PROXY when it is set."""

    def __init__(self, proxy: str = "") -> None:
        self.proxy = proxy

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProxyMiddleware:
        return cls(crawler.settings.get("FEEDLOOM_PROXY", ""))

    def process_request(self, request: Request) -> None:
        if self.proxy and "proxy" not in request.meta:
            request.meta["proxy"] = self.proxy


class BlockedAddress(IgnoreRequest):
    """A request to an address we refuse to fetch."""


class AddressGuardMiddleware:
    """Refuse non-http(s) schemes and, unless allowed, private, loopback and other internal addresses.

    Every redirect hop, article page and robots.txt passes here again as a request of its own;
    names are checked once more on the address DNS answers (crawler.resolver.GuardedResolver).
    """

    def __init__(self, allow_private: bool = False, allowed_hosts: Collection[str] = ()) -> None:
        self.allow_private = allow_private
        self.allowed_hosts = frozenset(normalize_host(h) for h in allowed_hosts)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> AddressGuardMiddleware:
        return cls(
            crawler.settings.getbool("FEEDLOOM_ALLOW_PRIVATE"),
            crawler.settings.getlist("FEEDLOOM_ALLOWED_HOSTS"),
        )

    def process_request(self, request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme not in ("http", "https"):
            raise BlockedAddress(f"refused {request.url}: only http and https are fetched")
        if self.allow_private:
            return
        host = parts.hostname or ""
        why = refused_host(host, self.allowed_hosts)
        if why:
            raise BlockedAddress(f"refused {request.url}: {host} is {why} (use --allow-private)")


_CREDENTIAL_HEADERS = (b"Authorization", b"Cookie", b"Proxy-Authorization")


def origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port: what a credential is scoped to."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, normalize_host(parts.hostname or ""), parts.port or {"http": 80, "https": 443}.get(scheme)


class CrossOriginCredentialsMiddleware:
    """Drop Authorization, Cookie and Proxy-Authorization once a redirect leaves the origin first asked.

    Runs after DefaultHeadersMiddleware, which would otherwise put configured credentials back
    on every hop; a proxy's own credentials are set again later by HttpProxyMiddleware.
    """

    def process_request(self, request: Request) -> None:
        chain = request.meta.get("redirect_urls") or ()
        if not chain or origin(chain[0]) == origin(request.url):
            return
        for name in _CREDENTIAL_HEADERS:
            request.headers.pop(name, None)


class SizeLimitMessageMiddleware:
    """Say why a download was cut: Scrapy cancels a body that grows past DOWNLOAD_MAXSIZE without a word."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SizeLimitMessageMiddleware:
        return cls(crawler.settings.getint("DOWNLOAD_MAXSIZE"))

    def process_exception(self, request: Request, exception: Exception) -> None:
        if isinstance(exception, DownloadCancelledError) and not str(exception):
            limit = request.meta.get("download_maxsize", self.maxsize)
            raise DownloadCancelledError(
                f"the response grew past the download max size ({limit} bytes, DOWNLOAD_MAXSIZE) and was cut off"
            )


class ConditionalGetMiddleware:
    """Send the stored ETag and Last-Modified so an unchanged feed costs a 304."""

    def process_request(self, request: Request) -> None:
        validators: dict[str, Any] = request.meta.get("validators") or {}
        if validators.get("etag") and b"If-None-Match" not in request.headers:
            request.headers[b"If-None-Match"] = validators["etag"]
        if validators.get("last_modified") and b"If-Modified-Since" not in request.headers:
            request.headers[b"If-Modified-Since"] = validators["last_modified"]
