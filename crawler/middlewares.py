"""Downloader middlewares for HTTP concerns only: the demo proxy, the address guard, conditional GET."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest


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


def refused_address(host: str) -> str | None:
    """Why a literal IP address is refused, or None when it is public."""
    try:
        addr = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if addr.is_loopback:
        return "a loopback address"
    if addr.is_link_local:
        return "a link-local address"
    if addr.is_multicast:
        return "a multicast address"
    if addr.is_unspecified:
        return "an unspecified address"
    if isinstance(addr, ipaddress.IPv4Address) and addr in ipaddress.ip_network("100.64.0.0/10"):
        return "a carrier-grade NAT address"
    if addr.is_private or addr.is_reserved:
        return "a private address"
    return None


def explain_refused_host(url: str) -> str | None:
    """Why a URL's host is refused after resolution, or None (for error messages only)."""
    import socket

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
    """Refuse non-http(s) schemes and, unless allowed, private, loopback and other internal addresses."""

    def __init__(self, allow_private: bool = False) -> None:
        self.allow_private = allow_private

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> AddressGuardMiddleware:
        return cls(crawler.settings.getbool("FEEDLOOM_ALLOW_PRIVATE"))

    def process_request(self, request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme not in ("http", "https"):
            raise BlockedAddress(f"refused {request.url}: only http and https are fetched")
        if self.allow_private:
            return
        host = parts.hostname or ""
        if host == "localhost" or host.endswith(".localhost"):
            raise BlockedAddress(f"refused {request.url}: {host} is a loopback address (use --allow-private)")
        why = refused_address(host)
        if why:
            raise BlockedAddress(f"refused {request.url}: {host} is {why} (use --allow-private)")


class ConditionalGetMiddleware:
    """Send the stored ETag and Last-Modified so an unchanged feed costs a 304."""

    def process_request(self, request: Request) -> None:
        validators: dict[str, Any] = request.meta.get("validators") or {}
        if validators.get("etag") and b"If-None-Match" not in request.headers:
            request.headers[b"If-None-Match"] = validators["etag"]
        if validators.get("last_modified") and b"If-Modified-Since" not in request.headers:
            request.headers[b"If-Modified-Since"] = validators["last_modified"]
