"""Headless Chromium against `feedloom serve`: the entries page and a search page render entries; screenshots kept."""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import lxml.html
import pytest

from pipelines.search import search_entries
from pipelines.store import open_db

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
    # The pages link fictitious image hosts; resolve nothing but 127.0.0.1, so the test stays offline.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is required in CI: apt-get install -y chromium fonts-wqy-microhei")
    pytest.skip("chromium is not installed (apt-get install -y chromium fonts-wqy-microhei)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ImageServer(http.server.ThreadingHTTPServer):
    """Serves one PNG on 127.0.0.1 and remembers the headers of every request for it."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        super().__init__(("127.0.0.1", 0), ImageHandler)


class ImageHandler(http.server.BaseHTTPRequestHandler):
    PNG = bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201f5e3b1d80000000049454e44ae426082"
    )

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        assert isinstance(self.server, ImageServer)
        self.server.requests.append({k.lower(): v for k, v in self.headers.items()})
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(self.PNG)))
        self.end_headers()
        self.wfile.write(self.PNG)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    server = ImageServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, images: ImageServer) -> Iterator[dict[str, str]]:
    """`feedloom serve` over a copy of the demo crawl; one entry's body also shows an image from 127.0.0.1."""
    try:
        source = Path(request.getfixturevalue("demo_db"))
    except pytest.FixtureLookupError:
        source = tmp_path_factory.mktemp("demo") / "feeds.db"
        subprocess.run([sys.executable, "-m", "crawler.cli", "demo", "--db", str(source)], cwd=ROOT, check=True,
                       capture_output=True, timeout=240)
    db = tmp_path_factory.mktemp("browser") / "feeds.db"
    with sqlite3.connect(source) as src, sqlite3.connect(db) as dst:
        src.backup(dst)
    conn = sqlite3.connect(db, isolation_level=None)
    entry_id, = conn.execute("SELECT id FROM entries WHERE title LIKE '%电商%' ORDER BY published_at DESC LIMIT 1").fetchone()
    image = f"http://127.0.0.1:{images.server_address[1]}/cover.png"
    conn.execute("UPDATE entries SET content_html = ? || content_html WHERE id = ?", [f'<p><img src="{image}" alt="cover"></p>', entry_id])
    conn.close()
    port = free_port()
    code = "import sys; from crawler.cli_browse import serve; serve(sys.argv[1:], prog_name='feedloom serve')"
    process = subprocess.Popen([sys.executable, "-c", code, "--db", str(db), "--port", str(port)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}/feeds"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + ".json", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"datasette did not start: {process.communicate(timeout=5)[0]}")
            time.sleep(0.2)
        yield {"base": base, "entry_id": entry_id, "db": str(db)}
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def browse(url: str, tmp_path: Path, screenshot: str | None = None, size: str = "1400,1000") -> lxml.html.HtmlElement:
    """Load URL in headless Chromium; return its DOM after scripts ran, and save a screenshot if asked."""
    binary = chromium()
    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium'}", f"--window-size={size}"]
    dom = subprocess.run([binary, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=False)
    assert dom.returncode == 0, dom.stderr[-2000:]
    if screenshot:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        target = ARTIFACTS / screenshot
        target.unlink(missing_ok=True)
        shot = subprocess.run([binary, *flags, f"--screenshot={target}", url], capture_output=True, text=True,
                              timeout=120, cwd=tmp_path, check=False)
        assert shot.returncode == 0, shot.stderr[-2000:]
        assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and target.stat().st_size > 10_000
    return lxml.html.fromstring(dom.stdout)


def cells(page: lxml.html.HtmlElement, column: str) -> list[str]:
    return [td.text_content().strip() for td in page.cssselect(f"table.rows-and-columns td.col-{column}")]


def test_entries_page_renders_entries(site: dict[str, str], tmp_path: Path) -> None:
    page = browse(f"{site['base']}/entries", tmp_path, screenshot="entries.png", size="1400,1800")
    conn = sqlite3.connect(site["db"])
    total, latest = conn.execute("SELECT count(*), max(published_at) FROM entries").fetchone()
    conn.close()
    titles = cells(page, "title")
    assert len(titles) == total and all(titles)
    assert cells(page, "published_at")[0] == latest
    assert page.cssselect("input#_search")
    facets = {div.get("data-column") for div in page.cssselect("div.facet-info")}
    assert facets >= {"feed_id", "author", "categories", "published_at"}


def test_search_page_renders_matches(site: dict[str, str], tmp_path: Path) -> None:
    url = f"{site['base']}/entries?" + urllib.parse.urlencode({"_search": "电商"})
    page = browse(url, tmp_path, screenshot="search-entries.png")
    db = open_db(site["db"], create=False)
    expected = {row["id"] for row in search_entries(db, "电商", limit=1000)}
    db.conn.close()
    assert expected and set(cells(page, "id")) == expected
    assert page.cssselect("input#_search")[0].get("value") == "电商"


def test_ranked_search_page_highlights(site: dict[str, str], tmp_path: Path) -> None:
    url = f"{site['base']}/search?" + urllib.parse.urlencode({"q": "跨境电商"})
    page = browse(url, tmp_path, screenshot="search-ranked.png")
    links = page.cssselect("td.col-entry a")
    assert links and all(link.get("href").startswith("entries/") for link in links)


def test_entry_page_shows_body_and_loads_images_without_referer(site: dict[str, str], tmp_path: Path,
                                                                 images: ImageServer) -> None:
    before = len(images.requests)
    page = browse(f"{site['base']}/entries/{site['entry_id']}", tmp_path, screenshot="entry.png", size="1200,1600")
    body = page.cssselect("td.col-content_html")
    assert body and body[0].cssselect("p")  # rendered as HTML, not escaped text
    assert page.cssselect("table.feedloom-record")  # the row laid out one line per column
    requests = images.requests[before:]
    assert requests, "the browser fetched the entry's image"
    assert all("referer" not in headers for headers in requests)
