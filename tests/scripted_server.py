"""A local HTTP server whose answers tests script per path: statuses, headers, delays, drips, bombs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # before the status line
    drip_s: float = 0.0  # between bytes of the body: a server that never quite finishes
    honor_etag: bool = True
    # When set, the body is these chunks instead, sent without a Content-Length: the client
    # cannot know the size in advance and reads until the connection closes.
    stream: Callable[[], Iterable[bytes]] | None = None


@dataclass(frozen=True)
class Hit:
    path: str
    headers: dict[str, str]


class ScriptedServer:
    """`with ScriptedServer() as s: s.route("/feed", Route(...)); s.url + "/feed"`."""

    def __init__(self) -> None:
        self.routes: dict[str, Route | Callable[[dict[str, str]], Route]] = {}
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - stdlib name
                headers = {k.lower(): v for k, v in self.headers.items()}
                with server._lock:
                    server.hits.append(Hit(self.path, headers))
                    route = server.routes.get(self.path.split("?")[0])
                if callable(route):
                    route = route(headers)
                if route is None:
                    route = Route(status=404, body=b"not found")
                if route.delay_s:
                    time.sleep(route.delay_s)
                etag = route.headers.get("ETag")
                if route.honor_etag and etag and headers.get("if-none-match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(route.status)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                if route.stream is not None:
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.close_connection = True
                    try:
                        for chunk in route.stream():
                            self.wfile.write(chunk)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    return
                if "Content-Length" not in route.headers:
                    self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                try:
                    if route.drip_s:
                        for i in range(len(route.body)):
                            self.wfile.write(route.body[i : i + 1])
                            self.wfile.flush()
                            time.sleep(route.drip_s)
                    else:
                        self.wfile.write(route.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def route(self, path: str, route: Route | Callable[[dict[str, str]], Route]) -> None:
        with self._lock:
            self.routes[path] = route

    def hits_for(self, path: str) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if h.path.split("?")[0] == path]

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def rss(*titles: str, ttl: int | None = None) -> bytes:
    items = "".join(
        f"<item><title>{t}</title><link>http://example.com/{i}</link><guid>http://example.com/{i}</guid>"
        f"<pubDate>Mon, 0{1 + i % 9} Jan 2024 10:00:00 GMT</pubDate><description>&lt;p&gt;{t} body&lt;/p&gt;</description></item>"
        for i, t in enumerate(titles)
    )
    ttl_tag = f"<ttl>{ttl}</ttl>" if ttl else ""
    return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Scripted</title>{ttl_tag}{items}</channel></rss>'.encode()
