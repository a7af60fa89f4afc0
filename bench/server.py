"""A local HTTP server for a benchmark corpus: ETag, Last-Modified, 304s and gzip, all prepared before the clock starts."""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self

ROBOTS = b"User-agent: *\nDisallow:\n"


@dataclass(frozen=True)
class Resource:
    """One file as the server sends it; the gzip body is made once, at start-up, so serving costs the crawl nothing."""

    body: bytes
    gzipped: bytes
    content_type: str
    etag: str
    last_modified: str


def load_resource(path: Path, content_type: str | None = None) -> Resource:
    body = path.read_bytes()
    modified = datetime.fromtimestamp(int(path.stat().st_mtime), tz=UTC)
    if content_type is None:
        content_type = (
            "application/atom+xml; charset=utf-8" if b"<feed" in body[:400] else "application/rss+xml; charset=utf-8"
        )
    return Resource(
        body=body,
        # Level 6 is what web servers commonly use; mtime=0 keeps the bytes stable.
        gzipped=gzip.compress(body, compresslevel=6, mtime=0),
        content_type=content_type,
        etag='"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"',
        last_modified=email.utils.format_datetime(modified, usegmt=True),
    )


def load_resources(root: Path, paths: list[str]) -> dict[str, Resource]:
    """URL path -> Resource for every path (e.g. /feeds/001.xml), read from ROOT."""
    return {p: load_resource(root / p.lstrip("/")) for p in paths}


def _not_modified_since(if_modified_since: str, last_modified: str) -> bool:
    try:
        since = email.utils.parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False
    if since.tzinfo is None:
        return False
    return email.utils.parsedate_to_datetime(last_modified) <= since


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # crawlers open several connections at once

    def __init__(self, address: tuple[str, int], resources: dict[str, Resource]) -> None:
        super().__init__(address, _Handler)
        self.resources = resources
        self.counts: Counter[int] = Counter()
        self.lock = threading.Lock()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a crawler hanging up is not the benchmark's business


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 60

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/robots.txt":
            self._send(200, [("Content-Type", "text/plain")], ROBOTS)
            return
        res = self.server.resources.get(path)
        if res is None:
            self._send(404, [("Content-Type", "text/plain")], b"not found\n")
            return
        validators = [("ETag", res.etag), ("Last-Modified", res.last_modified)]
        inm = self.headers.get("If-None-Match")
        ims = self.headers.get("If-Modified-Since")
        # If-None-Match decides alone when present (RFC 9110 13.2.2).
        if (inm is not None and res.etag in [t.strip().removeprefix("W/") for t in inm.split(",")]) or (
            inm is None and ims is not None and _not_modified_since(ims, res.last_modified)
        ):
            self._send(304, validators, b"")
            return
        headers = [("Content-Type", res.content_type), *validators, ("Vary", "Accept-Encoding")]
        if "gzip" in (self.headers.get("Accept-Encoding") or "").lower():
            headers.append(("Content-Encoding", "gzip"))
            self._send(200, headers, res.gzipped)
        else:
            self._send(200, headers, res.body)

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        with self.server.lock:
            self.server.counts[status] += 1
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)


class CorpusServer:
    """Serves prepared resources on 127.0.0.1 (a free port) from daemon threads; a context manager."""

    def __init__(self, resources: dict[str, Resource], host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _Server((host, port), resources)
        self._thread: threading.Thread | None = None
        self.host = host

    @classmethod
    def for_corpus(cls, root: str | Path, paths: list[str]) -> CorpusServer:
        return cls(load_resources(Path(root), paths))

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._server.serve_forever, name="CorpusServer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def take_counts(self) -> dict[int, int]:
        """Responses sent by status since the last call (robots.txt included)."""
        with self._server.lock:
            counts = dict(self._server.counts)
            self._server.counts.clear()
        return counts

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
