"""A local fixture web server: serves ROOT/<host>/<path> as an origin or a forward HTTP proxy, for offline crawls."""

from __future__ import annotations

import argparse
import email.utils
import gzip
import hashlib
import mimetypes
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote, urlsplit

DEFAULT_HOST_DIR = "_default"
DEFAULT_ROBOTS = b"User-agent: *\nDisallow:\n"
SIDECAR_SUFFIX = ".headers"
# Extension-less routes (RSSHub style, /feed) resolve to the first of these that exists.
IMPLICIT_SUFFIXES = (".html", ".xml", ".json")

CONTENT_TYPES = {
    ".xml": "application/xml; charset=utf-8",
    ".rss": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".opml": "text/x-opml; charset=utf-8",
    ".toml": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
}


@dataclass(frozen=True)
class LoggedRequest:
    """One request the server answered, as tests want to inspect it."""

    method: str
    host: str
    path: str  # without the query string
    query: str
    status: int
    headers: tuple[tuple[str, str], ...]
    proxied: bool  # the request line carried an absolute URI
    client_port: int = 0  # the client's side of the TCP connection: one port per connection it opened

    def header(self, name: str) -> str | None:
        """The first request header called `name` (case-insensitive), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None


@dataclass(frozen=True)
class _Response:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], root: Path, log: list[LoggedRequest], log_lock: threading.Lock
    ) -> None:
        super().__init__(address, _Handler)
        self.root = root.resolve()
        self.log = log
        self.log_lock = log_lock

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-response is normal for crawlers; anything else is a bug worth seeing.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as Scrapy expects from a real server
    timeout = 30  # idle keep-alive connections must not pin handler threads forever

    def version_string(self) -> str:
        return "feedloom-fixture/1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def do_POST(self) -> None:
        self._reject(HTTPStatus.METHOD_NOT_ALLOWED)

    do_PUT = do_DELETE = do_PATCH = do_POST

    def do_CONNECT(self) -> None:
        # Only plain-http proxying: demo URLs are http://, so there is no tunnel to open.
        self._reject(HTTPStatus.NOT_IMPLEMENTED)

    def _reject(self, status: HTTPStatus) -> None:
        host, path, query, proxied = self._target()
        # The request body is never read, so this connection cannot carry another request.
        self.close_connection = True
        response = _text_response(status, f"{status.value} {status.phrase}\n", (("Connection", "close"),))
        self._record(host, path, query, proxied, response.status)
        self._send(response, send_body=True)

    def _answer(self, send_body: bool) -> None:
        host, path, query, proxied = self._target()
        response = _resolve(self.server.root, host, path, dict(_lower_items(self.headers.items())))
        self._record(host, path, query, proxied, response.status)
        self._send(response, send_body)

    def _target(self) -> tuple[str, str, str, bool]:
        """(host, path, query, proxied) from an absolute-URI request line or the Host header."""
        if "://" in self.path.split("?", 1)[0]:
            parts = urlsplit(self.path)
            return (parts.hostname or "").lower(), parts.path or "/", parts.query, True
        path, _, query = self.path.partition("?")
        return _strip_port(self.headers.get("Host", "")), path or "/", query, False

    def _record(self, host: str, path: str, query: str, proxied: bool, status: int) -> None:
        # Logged before the response is written, so a client that has read it sees the entry.
        entry = LoggedRequest(
            method=self.command,
            host=host,
            path=path,
            query=query,
            status=status,
            headers=tuple(self.headers.items()),
            proxied=proxied,
            client_port=self.client_address[1],
        )
        with self.server.log_lock:
            self.server.log.append(entry)

    def _send(self, response: _Response, send_body: bool) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        if send_body and response.body:
            self.wfile.write(response.body)


def _lower_items(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(key.lower(), value) for key, value in items]


def _strip_port(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8080
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _text_response(status: int, text: str, extra: tuple[tuple[str, str], ...] = ()) -> _Response:
    body = text.encode("utf-8")
    headers = (("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))), *extra)
    return _Response(int(status), headers, body)


def _host_dir(root: Path, host: str) -> Path | None:
    if host and host not in (".", "..") and all(c.isalnum() or c in ".-_" for c in host):
        candidate = root / host
        if candidate.is_dir():
            return candidate
    fallback = root / DEFAULT_HOST_DIR
    return fallback if fallback.is_dir() else None


def _find_file(root: Path, host_dir: Path, path: str) -> Path | None:
    """The file a URL path maps to, or None; raises PermissionError for anything outside root."""
    segments = [unquote(s) for s in path.split("/")]
    for segment in segments:
        if segment in ("..", ".") or "\\" in segment or "\x00" in segment or "/" in segment:
            raise PermissionError(path)
    parts = [s for s in segments if s]
    base = host_dir.joinpath(*parts)
    if path.endswith("/") or not parts or base.is_dir():
        candidates = [base / "index.html"]
    else:
        candidates = [base, *(base.with_name(base.name + suffix) for suffix in IMPLICIT_SUFFIXES)]
    for candidate in candidates:
        if candidate.name.endswith(SIDECAR_SUFFIX) or not candidate.is_file():
            continue
        resolved = candidate.resolve()
        if not resolved.is_relative_to(root):  # a symlink pointing out of the fixture tree
            raise PermissionError(path)
        return candidate
    return None


def _read_sidecar(file: Path) -> tuple[int, list[tuple[str, str]]]:
    """(status, headers) from `<file>.headers`: `Name: value` lines, `Status: NNN` sets the status."""
    status = 200
    headers: list[tuple[str, str]] = []
    sidecar = file.with_name(file.name + SIDECAR_SUFFIX)
    if not sidecar.is_file():
        return status, headers
    for line in sidecar.read_text("utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        name, value = (part.strip() for part in line.split(":", 1))
        if name.lower() == "status":
            status = int(value.split()[0])
        else:
            headers.append((name, value))
    return status, headers


def _content_type(file: Path, body: bytes) -> str:
    suffix = file.suffix.lower()
    if suffix == ".json":
        # JSON Feed announces itself in its first key; other JSON is plain data.
        return "application/feed+json" if b"jsonfeed.org/version" in body[:512] else "application/json"
    if suffix in CONTENT_TYPES:
        return CONTENT_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(file.name)
    return guessed or "application/octet-stream"


def _etag_matches(if_none_match: str, etag: str) -> bool:
    # If-None-Match uses the weak comparison (RFC 9110 13.1.2).
    def opaque(tag: str) -> str:
        return tag.strip().removeprefix("W/")

    candidates = [opaque(tag) for tag in if_none_match.split(",")]
    return "*" in candidates or opaque(etag) in candidates


def _not_modified_since(if_modified_since: str, last_modified: str) -> bool:
    try:
        since = email.utils.parsedate_to_datetime(if_modified_since)
        modified = email.utils.parsedate_to_datetime(last_modified)
    except (TypeError, ValueError):
        return False
    if since.tzinfo is None or modified.tzinfo is None:
        return False
    return modified <= since


def _accepts_gzip(accept_encoding: str) -> bool:
    for token in accept_encoding.split(","):
        coding, _, params = token.strip().partition(";")
        if coding.strip().lower() not in ("gzip", "x-gzip", "*"):
            continue
        q = params.strip().lower()
        if q.startswith("q="):
            try:
                return float(q[2:]) > 0
            except ValueError:
                return False
        return True
    return False


def _resolve(root: Path, host: str, path: str, request_headers: dict[str, str]) -> _Response:
    """The full response for GET host+path; pure apart from reading the fixture tree."""
    host_dir = _host_dir(root, host)
    try:
        file = _find_file(root, host_dir, path) if host_dir is not None else None
    except PermissionError:
        return _text_response(HTTPStatus.FORBIDDEN, "403 Forbidden: path outside the fixture root\n")
    if file is None:
        if path == "/robots.txt":
            return _Response(
                200,
                (("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(DEFAULT_ROBOTS)))),
                DEFAULT_ROBOTS,
            )
        return _text_response(HTTPStatus.NOT_FOUND, f"404 Not Found: {host}{path}\n")

    body = file.read_bytes()
    status, sidecar_headers = _read_sidecar(file)
    mtime = datetime.fromtimestamp(int(file.stat().st_mtime), tz=UTC)
    headers: dict[str, tuple[str, str]] = {}  # lower-case name -> (name, value); the sidecar wins

    def put(name: str, value: str) -> None:
        headers[name.lower()] = (name, value)

    put("Content-Type", _content_type(file, body))
    if status == 200:
        put("ETag", '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
        put("Last-Modified", email.utils.format_datetime(mtime, usegmt=True))
    for name, value in sidecar_headers:
        put(name, value)

    if status == 200:
        etag = headers.get("etag", ("", ""))[1]
        last_modified = headers.get("last-modified", ("", ""))[1]
        if_none_match = request_headers.get("if-none-match")
        if_modified_since = request_headers.get("if-modified-since")
        # If-None-Match, when sent, decides alone (RFC 9110 13.2.2).
        if (if_none_match is not None and etag and _etag_matches(if_none_match, etag)) or (
            if_none_match is None and if_modified_since and last_modified
            and _not_modified_since(if_modified_since, last_modified)
        ):
            kept = tuple(headers[k] for k in ("etag", "last-modified", "cache-control", "expires") if k in headers)
            return _Response(304, kept, b"")

    if "content-encoding" not in headers and body:
        put("Vary", "Accept-Encoding")
        if _accepts_gzip(request_headers.get("accept-encoding", "")):
            # mtime=0 keeps the compressed bytes stable between runs.
            body = gzip.compress(body, mtime=0)
            put("Content-Encoding", "gzip")
    put("Content-Length", str(len(body)))
    return _Response(status, tuple(headers.values()), body)


class FixtureServer:
    """Serves a by-host fixture folder on 127.0.0.1 from a daemon thread; use it as a context manager."""

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise NotADirectoryError(f"fixture root is not a directory: {self.root}")
        self._host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        # Owned here, not by the socket server, so the log outlives stop() for assertions.
        self._log: list[LoggedRequest] = []
        self._log_lock = threading.Lock()

    def start(self) -> Self:
        """Bind and start serving; returns self."""
        if self._server is not None:
            return self
        self._server = _Server((self._host, self._port), self.root, self._log, self._log_lock)
        # A short poll interval keeps stop() fast: tests start and stop many servers.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FixtureServer:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the socket; safe to call twice."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with port=0)."""
        if self._server is None:
            raise RuntimeError("FixtureServer is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, also the proxy URL to put in Scrapy's request.meta['proxy']."""
        return f"http://{self._host}:{self.port}"

    @property
    def requests(self) -> list[LoggedRequest]:
        """A snapshot of the request log, oldest first."""
        with self._log_lock:
            return list(self._log)

    def reset_log(self) -> None:
        """Forget all logged requests."""
        with self._log_lock:
            self._log.clear()


def main(argv: list[str] | None = None) -> int:
    """Serve a fixture folder by hand: python -m crawler.testserver data/demo [--port N]."""
    parser = argparse.ArgumentParser(prog="python -m crawler.testserver", description=main.__doc__)
    parser.add_argument("root", type=Path, help="folder laid out as ROOT/<host>/<path>")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: any free port)")
    args = parser.parse_args(argv)
    with FixtureServer(args.root, host=args.host, port=args.port) as server:
        print(server.url, flush=True)
        print(f"try: curl -x {server.url} http://www.woshipm.com/feed", file=sys.stderr, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
