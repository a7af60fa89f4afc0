"""Downloader middlewares for HTTP concerns only: the demo proxy, the address guard, credentials on redirects, conditional GET."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Collection
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import DownloadCancelledError, IgnoreRequest


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


_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_IETF_PROTOCOL = ipaddress.ip_network("192.0.0.0/24")
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def refused_address(host: str) -> str | None:
    """Why a literal IP address is refused, or None when it is public."""
    try:
        addr = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address):
        # IPv6 forms that carry an IPv4 address reach that address: judge the IPv4 one.
        embedded = addr.ipv4_mapped or addr.sixtofour
        if embedded is None and addr in _NAT64:
            embedded = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
        if embedded is not None:
            return refused_address(str(embedded))
    if addr.is_loopback:
        return "a loopback address"
    if addr.is_link_local:
        return "a link-local address"
    if addr.is_multicast:
        return "a multicast address"
    if addr.is_unspecified:
        return "an unspecified address"
    if isinstance(addr, ipaddress.IPv4Address) and addr in _CGNAT:
        return "a carrier-grade NAT address"
    if addr.is_private or addr.is_reserved or addr in _IETF_PROTOCOL or addr in _SITE_LOCAL or not addr.is_global:
        return "a private address"
    return None


def legacy_ipv4(host: str) -> str | None:
    """The dotted quad a resolver reads in `2130706433`, `0x7f.1`, `127.1` or `0177.0.0.1`, else None."""
    if not host or not all(c in "0123456789abcdefxABCDEFX." for c in host) or not host[0].isdigit():
        return None
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None


def normalize_host(host: str) -> str:
    """A host name as the guard compares it: lower case, without brackets or a trailing dot."""
    return host.strip("[]").rstrip(".").lower()


def refused_host(host: str, allowed_hosts: Collection[str] = ()) -> str | None:
    """Why a URL's host is refused before any DNS lookup, or None (names are checked again on every DNS answer)."""
    host = normalize_host(host)
    if host in allowed_hosts:
        return None
    if host == "localhost" or host.endswith(".localhost"):
        return "a loopback address"
    quad = legacy_ipv4(host)
    if quad is not None and quad != host:
        why = refused_address(quad)
        return f"{quad}, {why}" if why else None
    return refused_address(host)


def explain_refused_host(url: str) -> str | None:
    """Why a URL's host is refused after resolution, or None (for error messages only)."""
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return None
    for info in infos:
        address = str(info[4][0])
        why = refused_address(address)
        if why:
            return f"refused: {host} resolves to {address}, {why} (use --allow-private)"
    return None


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
