"""Which hosts and addresses we refuse to fetch from: pure, so one-off commands need not import Scrapy."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Collection
from urllib.parse import urlsplit

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
