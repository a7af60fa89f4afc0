"""What the attack tests share: hostile bodies (compression bombs, XML bombs), and crawls measured for time and peak memory."""

from __future__ import annotations

import gzip
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

from tests.conftest import ROOT

RSS_HEADERS = {"Content-Type": "application/rss+xml; charset=utf-8"}
MIB = 1024 * 1024


@dataclass(frozen=True)
class Measured:
    """A finished subprocess, with its wall time and its own peak resident memory."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_mb: float


# Linux charges a child's peak RSS with the high-water mark of the process it was forked from
# (exec keeps it), so a crawl forked from pytest would show pytest's memory. This small launcher
# forks the command itself and reports that child's own rusage.
_LAUNCHER = (
    "import json, os, subprocess, sys\n"
    "process = subprocess.Popen(sys.argv[2:])\n"
    "_, status, usage = os.wait4(process.pid, 0)\n"
    "with open(sys.argv[1], 'w') as out:\n"
    "    json.dump({'returncode': os.waitstatus_to_exitcode(status), 'peak_kb': usage.ru_maxrss}, out)\n"
)


def run_measured(argv: list[str], *, timeout: float = 120) -> Measured:
    """Run argv from the project root, with its wall time and its own peak RSS (ru_maxrss of that process)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "usage.json"
        out_path, err_path = Path(tmp) / "out", Path(tmp) / "err"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            started = time.monotonic()
            process = subprocess.Popen(
                [sys.executable, "-c", _LAUNCHER, str(report), *argv],
                cwd=ROOT,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            seconds = time.monotonic() - started
        usage = json.loads(report.read_text()) if report.exists() else {"returncode": -9, "peak_kb": 0}
        return Measured(
            returncode=usage["returncode"],
            stdout=out_path.read_text("utf-8", "replace"),
            stderr=err_path.read_text("utf-8", "replace"),
            seconds=seconds,
            peak_mb=usage["peak_kb"] / 1024,  # ru_maxrss is in kilobytes on Linux
        )


def feedloom_measured(*args: str, timeout: float = 120) -> Measured:
    return run_measured([sys.executable, "-m", "crawler.cli", *args], timeout=timeout)


_CRAWL_WITH = (
    "import json, sys\n"
    "from crawler.runner import CrawlOptions, run_crawl\n"
    "run_crawl(CrawlOptions(db_path=sys.argv[1], all_feeds=True, progress=False, extra_settings=json.loads(sys.argv[2])))\n"
)


def crawl_with_settings(db: Path, settings: dict[str, Any], *, timeout: float = 120) -> Measured:
    """A crawl with settings `-s` cannot carry (dicts such as DEFAULT_REQUEST_HEADERS)."""
    return run_measured([sys.executable, "-c", _CRAWL_WITH, str(db), json.dumps(settings)], timeout=timeout)


def add_feeds(db: Path, urls: list[str]) -> None:
    from pipelines.store import Store

    store = Store.open(str(db))
    try:
        for url in urls:
            store.add_feed(url, name=None, categories=())
    finally:
        store.close()


def feeds_by_path(db: Path) -> dict[str, dict[str, Any]]:
    """Feed rows keyed by their URL's path (host and port left out)."""
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        rows = [dict(r) for r in conn.execute("SELECT * FROM feeds")]
    return {urlsplit(r["url"]).path: r for r in rows}


def rss(items: list[tuple[str, str]], *, title: str = "Hostile test feed") -> bytes:
    """An RSS 2.0 feed of (title, link) items, each with a body long enough to count as full content."""
    body = "&lt;p&gt;" + " ".join(["word"] * 150) + "&lt;/p&gt;"
    xml_items = "".join(
        f"<item><title>{t}</title><link>{link}</link><guid>{link}</guid>"
        f"<pubDate>Mon, 01 Jan 2024 10:00:00 GMT</pubDate><description>{body}</description></item>"
        for t, link in items
    )
    return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title>{xml_items}</channel></rss>'.encode()


def gzip_bomb(size: int = 1024 * MIB) -> bytes:
    """About 1 KB per MiB of zeros: gzip members, concatenated (one valid gzip stream)."""
    member = gzip.compress(b"\0" * (16 * MIB), compresslevel=9)
    return member * max(1, size // (16 * MIB))


def deflate_bomb(size: int = 256 * MIB) -> bytes:
    compressor = zlib.compressobj(1)
    chunk = b"\0" * (16 * MIB)
    return b"".join(compressor.compress(chunk) for _ in range(max(1, size // (16 * MIB)))) + compressor.flush()


def brotli_bomb(size: int = 1024 * MIB) -> bytes:
    import brotli

    compressor = brotli.Compressor(quality=1)
    chunk = b"\0" * (16 * MIB)
    return b"".join(compressor.process(chunk) for _ in range(max(1, size // (16 * MIB)))) + compressor.finish()


def billion_laughs(levels: int = 10, *, encoding: str = "utf-8") -> bytes:
    decls = ['<!ENTITY lol0 "lol">']
    decls += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, levels)]
    text = (
        f"<?xml version='1.0' encoding='{encoding}'?><!DOCTYPE rss [{''.join(decls)}]>"
        f"<rss version='2.0'><channel><title>t</title><item><title>&lol{levels - 1};</title>"
        "<link>http://example.com/1</link></item></channel></rss>"
    )
    return text.encode(encoding)


def quadratic_blowup(value: str = "x" * 20_000, refs: int = 20_000, *, encoding: str = "utf-8", declare: bool = True) -> bytes:
    """One large entity referenced many times: no nesting for a depth limit to catch."""
    decl = f"<?xml version='1.0' encoding='{encoding}'?>" if declare else ""
    text = (
        f'{decl}<!DOCTYPE rss [<!ENTITY a "{value}">]>'
        "<rss version='2.0'><channel><title>t</title><item><title>i</title><link>http://example.com/1</link>"
        f"<description>{'&a;' * refs}</description></item></channel></rss>"
    )
    return text.encode(encoding)


class DripServer:
    """A raw TCP server that sends one fixed response a byte at a time, headers included (a slowloris in reverse)."""

    def __init__(self, response: bytes, interval_s: float) -> None:
        import socketserver
        import threading

        payload, interval = response, interval_s

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.recv(65536)
                try:
                    for i in range(len(payload)):
                        self.request.sendall(payload[i : i + 1])
                        time.sleep(interval)
                except OSError:
                    pass

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


DRIPPED_HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nX-Padding: " + b"a" * 400 + b"\r\nContent-Length: 5\r\n\r\n<rss>"
