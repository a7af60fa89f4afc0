"""A small guarded fetch for one-off commands (`feedloom parse URL`, `recipes check --live`), outside Scrapy."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
import zlib
from urllib.parse import urljoin, urlsplit

from crawler.middlewares import refused_address
from crawler.settings import DOWNLOAD_MAXSIZE, DOWNLOAD_TIMEOUT, REDIRECT_MAX_TIMES, USER_AGENT


class FetchError(Exception):
    """The URL could not be fetched; the message says why."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def check_url(url: str, *, allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(f"refused {url}: only http and https URLs are fetched")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except socket.gaierror as exc:
        raise FetchError(f"DNS lookup failed for {parts.hostname}: {exc.strerror}") from None
    for info in infos:
        why = refused_address(str(info[4][0]))
        if why:
            raise FetchError(f"refused {url}: {parts.hostname} resolves to {why} (use --allow-private)")


def fetch_url(url: str, *, allow_private: bool = False, max_bytes: int = DOWNLOAD_MAXSIZE) -> tuple[bytes, dict[str, str], str]:
    """GET a URL with our User-Agent, redirects checked hop by hop, size capped after decompression."""
    opener = urllib.request.build_opener(_NoRedirect)
    for _ in range(REDIRECT_MAX_TIMES + 1):
        check_url(url, allow_private=allow_private)
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"})
        try:
            response = opener.open(request, timeout=DOWNLOAD_TIMEOUT)
        except urllib.error.HTTPError as exc:
            if exc.code in (301, 302, 303, 307, 308) and exc.headers.get("Location"):
                url = urljoin(url, exc.headers["Location"])
                continue
            raise FetchError(f"HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise FetchError(str(getattr(exc, "reason", exc))) from None
        with response:
            raw = response.read(max_bytes + 1)
            headers = {k.lower(): v for k, v in response.headers.items()}
        if len(raw) > max_bytes:
            raise FetchError(f"response larger than {max_bytes} bytes")
        return _decompress(raw, headers.get("content-encoding", ""), max_bytes), headers, url
    raise FetchError(f"more than {REDIRECT_MAX_TIMES} redirects")


def _decompress(raw: bytes, encoding: str, max_bytes: int) -> bytes:
    encoding = encoding.lower().strip()
    if encoding in ("gzip", "x-gzip", "deflate"):
        wbits = 16 + zlib.MAX_WBITS if "gzip" in encoding else zlib.MAX_WBITS
        decoder = zlib.decompressobj(wbits)
        try:
            out = decoder.decompress(raw, max_bytes + 1)
        except zlib.error as exc:
            raise FetchError(f"bad {encoding} body: {exc}") from None
        if len(out) > max_bytes:
            raise FetchError(f"response larger than {max_bytes} bytes after decompression")
        return out
    return raw


__all__ = ["FetchError", "check_url", "fetch_url"]
