"""A small guarded fetch for one-off commands (`feedloom parse URL`, `recipes check --live`), outside Scrapy."""

from __future__ import annotations

import http.client
import os
import socket
import threading
import time
import urllib.error
import urllib.request
import zlib
from typing import Any
from urllib.parse import urljoin, urlsplit

from crawler.addresses import refused_address, refused_host
from crawler.settings import DOWNLOAD_MAXSIZE, DOWNLOAD_TIMEOUT, REDIRECT_MAX_TIMES, USER_AGENT


class FetchError(Exception):
    """The URL could not be fetched; the message says why."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse a URL before connecting: scheme, literal internal addresses, names that resolve inside."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(f"refused {url}: only http and https URLs are fetched")
    if allow_private:
        return
    why = refused_host(parts.hostname)
    if why:
        raise FetchError(f"refused {url}: {parts.hostname} is {why} (use --allow-private)")
    _resolve(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), allow_private=False)


def _resolve(host: str, port: int, *, allow_private: bool) -> list[tuple[Any, ...]]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"DNS lookup failed for {host}: {getattr(exc, 'strerror', None) or exc}") from None
    if not allow_private:
        for info in infos:
            why = refused_address(str(info[4][0]))
            if why:
                raise FetchError(f"refused: {host} resolves to {info[4][0]}, {why} (use --allow-private)")
    return infos


class _Connector:
    """Connects only to addresses it has checked itself, and cuts every socket at one deadline.

    Connecting to the address we checked (not resolving again) leaves no gap for DNS rebinding;
    the watchdog shuts the socket down when the deadline passes, whatever phase the response is
    in, so a server dripping headers or body one byte at a time cannot keep us.
    """

    def __init__(self, *, allow_private: bool, deadline: float) -> None:
        self.allow_private = allow_private
        self.deadline = deadline
        self.expired = False
        self._lock = threading.Lock()
        self._fds: list[int] = []
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0 or self.expired:
            raise FetchError(f"timed out: no complete response within {DOWNLOAD_TIMEOUT} seconds")
        return left

    def connect(self, address: tuple[str, int], timeout: object = None, source_address: object = None) -> socket.socket:
        host, port = address
        error: OSError | None = None
        for family, kind, proto, _, sockaddr in _resolve(host, port, allow_private=self.allow_private):
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(self.remaining())
                sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                error = exc
                continue
            with self._lock:
                self._fds.append(sock.fileno())
            return sock
        raise error or FetchError(f"could not connect to {host}")

    def http_connection(self, host: str, **kwargs: Any) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection(host, **kwargs)
        conn._create_connection = self.connect  # type: ignore[method-assign]
        return conn

    def https_connection(self, host: str, **kwargs: Any) -> http.client.HTTPSConnection:
        kwargs.pop("check_hostname", None)
        conn = http.client.HTTPSConnection(host, **kwargs)
        conn._create_connection = self.connect  # type: ignore[method-assign]
        return conn

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for fd in self._fds:
                try:
                    # A duplicate of the descriptor reaches the same connection, even once TLS wrapped it.
                    dup = socket.socket(fileno=os.dup(fd))
                except OSError:
                    continue
                try:
                    dup.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                finally:
                    dup.close()
            self._fds.clear()

    def close(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._fds.clear()  # the sockets are closed by now; never shut a reused descriptor


class _GuardedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, connector: _Connector) -> None:
        super().__init__()
        self.connector = connector

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self.connector.http_connection, req)


class _GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, connector: _Connector) -> None:
        super().__init__()
        self.connector = connector

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self.connector.https_connection, req, context=self._context)


def fetch_url(url: str, *, allow_private: bool = False, max_bytes: int = DOWNLOAD_MAXSIZE) -> tuple[bytes, dict[str, str], str]:
    """GET a URL with our User-Agent, redirects checked hop by hop, size capped after decompression.

    One deadline (DOWNLOAD_TIMEOUT) covers every hop, header and byte; no proxy from the
    environment is used, so the address checked is the address connected to.
    """
    connector = _Connector(allow_private=allow_private, deadline=time.monotonic() + DOWNLOAD_TIMEOUT)
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler({}),
        _GuardedHTTPHandler(connector),
        _GuardedHTTPSHandler(connector),
        urllib.request.HTTPDefaultErrorHandler(),
        _NoRedirect(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    try:
        return _fetch(opener, connector, url, allow_private=allow_private, max_bytes=max_bytes)
    finally:
        connector.close()


def _fetch(
    opener: urllib.request.OpenerDirector, connector: _Connector, url: str, *, allow_private: bool, max_bytes: int
) -> tuple[bytes, dict[str, str], str]:
    for _ in range(REDIRECT_MAX_TIMES + 1):
        check_url(url, allow_private=allow_private)
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"})
        try:
            response = opener.open(request, timeout=connector.remaining())
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code in (301, 302, 303, 307, 308) and exc.headers.get("Location"):
                url = urljoin(url, exc.headers["Location"])
                continue
            raise FetchError(f"HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            connector.remaining()  # a socket the watchdog cut reads as a timeout, not as a reset
            raise FetchError(str(getattr(exc, "reason", exc))) from None
        with response:
            headers = {k.lower(): v for k, v in response.headers.items()}
            raw = _read_body(response, connector, max_bytes)
        return _decompress(raw, headers.get("content-encoding", ""), max_bytes), headers, url
    raise FetchError(f"more than {REDIRECT_MAX_TIMES} redirects")


def _read_body(response: http.client.HTTPResponse, connector: _Connector, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        try:
            chunk = response.read1(65536)
        except (OSError, http.client.HTTPException) as exc:
            connector.remaining()
            raise FetchError(f"connection failed while reading: {exc}") from None
        connector.remaining()
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > max_bytes:
            raise FetchError(f"response larger than {max_bytes} bytes")
        chunks.append(chunk)


def _decompress(raw: bytes, encoding: str, max_bytes: int) -> bytes:
    encoding = encoding.lower().strip()
    if encoding not in ("gzip", "x-gzip", "deflate"):
        return raw
    wbits = 16 + zlib.MAX_WBITS if "gzip" in encoding else zlib.MAX_WBITS
    out = bytearray()
    data = raw
    while data:
        decoder = zlib.decompressobj(wbits)
        try:
            out += decoder.decompress(data, max_bytes + 1 - len(out))
        except zlib.error as exc:
            raise FetchError(f"bad {encoding} body: {exc}") from None
        if len(out) > max_bytes or decoder.unconsumed_tail:
            raise FetchError(f"response larger than {max_bytes} bytes after decompression")
        # gzip allows several members one after another; each counts against the same cap.
        data = decoder.unused_data if decoder.eof and "gzip" in encoding else b""
    return bytes(out)


__all__ = ["FetchError", "check_url", "fetch_url"]
