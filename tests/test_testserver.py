"""Tests for crawler.testserver and for the demo site and feed fixtures it serves."""

from __future__ import annotations

import dataclasses
import email.utils
import gzip
import http.client
import json
import socket
import subprocess
import sys
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import pytest

from crawler.testserver import FixtureServer, LoggedRequest

PROJECT = Path(__file__).resolve().parent.parent
DEMO = PROJECT / "data" / "demo"
FIXTURE_FEEDS = Path(__file__).resolve().parent / "fixtures" / "feeds"

DEMO_FEED_COUNTS = {
    "http://www.woshipm.com/feed": 4,
    "http://rsshub.app/woshipm/user_article/788034": 3,
    "http://rsshub.app/woshipm/latest": 3,
    "http://columns.example.org/atom.xml": 3,
    "http://newsletter.example.net/feed.json": 3,
}
BROKEN_FEED = "http://broken.example.com/feed.xml"


@dataclasses.dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


def fetch(
    server: FixtureServer, target: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> Reply:
    """`target` is an absolute URL (proxy mode) or a path (origin mode)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, target, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    finally:
        conn.close()


def raw_request(server: FixtureServer, request_line: str, host: str = "h.test") -> int:
    """Send a request line byte for byte (http.client would not let us send `..`); return the status."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(f"{request_line}\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode("latin-1"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1])


def load_demo_feeds() -> list[dict[str, object]]:
    return list(tomllib.loads((DEMO / "feeds.toml").read_text("utf-8"))["feeds"])


@pytest.fixture(scope="module")
def demo() -> Iterator[FixtureServer]:
    with FixtureServer(DEMO) as server:
        yield server


@pytest.fixture()
def site(tmp_path: Path) -> Iterator[FixtureServer]:
    root = tmp_path / "site"
    host = root / "h.test"
    (host / "sub").mkdir(parents=True)
    (host / "index.html").write_text("<p>home</p>", "utf-8")
    (host / "sub" / "index.html").write_text("<p>sub</p>", "utf-8")
    (host / "notes.txt").write_text("plain", "utf-8")
    (host / "data.json").write_text('{"a": 1}', "utf-8")
    (host / "feed.json").write_text('{"version": "https://jsonfeed.org/version/1.1", "items": []}', "utf-8")
    (host / "error.xml").write_text("<error/>", "utf-8")
    (host / "error.xml.headers").write_text("# simulated outage\nStatus: 503\nRetry-After: 120\n", "utf-8")
    (host / "odd.xml").write_text("<rss/>", "utf-8")
    (host / "odd.xml.headers").write_text("Content-Type: text/html; charset=gb2312\nX-Extra: yes\n", "utf-8")
    (host / "moved.xml").write_text("", "utf-8")
    (host / "moved.xml.headers").write_text("Status: 301\nLocation: http://h.test/odd.xml\n", "utf-8")
    (root / "_default").mkdir()
    (root / "_default" / "index.html").write_text("<p>default</p>", "utf-8")
    (tmp_path / "secret.txt").write_text("outside the root", "utf-8")
    (host / "escape.txt").symlink_to(tmp_path / "secret.txt")
    with FixtureServer(root) as server:
        yield server


def test_proxy_mode_serves_by_host_from_the_absolute_uri(demo: FixtureServer) -> None:
    reply = fetch(demo, "http://www.woshipm.com/feed")
    assert reply.status == 200
    assert reply.body == (DEMO / "www.woshipm.com" / "feed.xml").read_bytes()
    assert reply.headers["content-type"] == "application/xml; charset=utf-8"


def test_origin_mode_takes_the_host_header_without_port(demo: FixtureServer) -> None:
    reply = fetch(demo, "/feed", headers={"Host": "www.woshipm.com:8080"})
    assert reply.status == 200
    assert reply.body == (DEMO / "www.woshipm.com" / "feed.xml").read_bytes()


def test_unknown_host_falls_back_to_default_folder(demo: FixtureServer) -> None:
    reply = fetch(demo, "/")
    assert reply.status == 200
    assert reply.body == (DEMO / "_default" / "index.html").read_bytes()


def test_urllib_proxy_handler_reaches_the_fixture(demo: FixtureServer) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": demo.url}))
    with opener.open("http://columns.example.org/atom.xml", timeout=10) as response:
        assert response.read() == (DEMO / "columns.example.org" / "atom.xml").read_bytes()


@pytest.mark.parametrize(
    ("url", "file"),
    [
        ("http://rsshub.app/woshipm/user_article/788034", "rsshub.app/woshipm/user_article/788034.xml"),
        ("http://rsshub.app/woshipm/latest", "rsshub.app/woshipm/latest.xml"),
        ("http://www.woshipm.com/feed", "www.woshipm.com/feed.xml"),
        ("http://www.woshipm.com/", "www.woshipm.com/index.html"),
        ("http://www.woshipm.com/pd/5302417", "www.woshipm.com/pd/5302417.html"),
    ],
)
def test_extensionless_paths_resolve_to_a_file(demo: FixtureServer, url: str, file: str) -> None:
    assert fetch(demo, url).body == (DEMO / file).read_bytes()


def test_query_string_is_ignored_but_logged(demo: FixtureServer) -> None:
    demo.reset_log()
    url = "http://www.woshipm.com/pd/5302417.html?utm_source=rss&utm_medium=rss&utm_campaign=x"
    reply = fetch(demo, url)
    assert reply.status == 200
    assert reply.body == (DEMO / "www.woshipm.com" / "pd" / "5302417.html").read_bytes()
    [logged] = demo.requests
    assert (logged.path, logged.query) == ("/pd/5302417.html", "utm_source=rss&utm_medium=rss&utm_campaign=x")


def test_missing_file_is_404(demo: FixtureServer) -> None:
    assert fetch(demo, "http://www.woshipm.com/pd/1.html").status == 404


@pytest.mark.parametrize(
    ("target", "status", "content_type"),
    [
        ("/", 200, "text/html; charset=utf-8"),
        ("/sub/", 200, "text/html; charset=utf-8"),
        ("/sub", 200, "text/html; charset=utf-8"),
        ("/notes.txt", 200, "text/plain; charset=utf-8"),
        ("/data.json", 200, "application/json"),
        ("/feed.json", 200, "application/feed+json"),
        ("/feed", 200, "application/feed+json"),
        ("/error.xml", 503, "application/xml; charset=utf-8"),
        ("/odd.xml", 200, "text/html; charset=gb2312"),
        ("/moved.xml", 301, "application/xml; charset=utf-8"),
    ],
)
def test_status_and_content_type(site: FixtureServer, target: str, status: int, content_type: str) -> None:
    reply = fetch(site, target, headers={"Host": "h.test"})
    assert (reply.status, reply.headers["content-type"]) == (status, content_type)


def test_sidecar_adds_headers(site: FixtureServer) -> None:
    assert fetch(site, "http://h.test/error.xml").headers["retry-after"] == "120"
    assert fetch(site, "http://h.test/odd.xml").headers["x-extra"] == "yes"
    assert fetch(site, "http://h.test/moved.xml").headers["location"] == "http://h.test/odd.xml"


def test_sidecar_file_itself_is_not_served(site: FixtureServer) -> None:
    assert fetch(site, "http://h.test/error.xml.headers").status == 404


def test_error_status_carries_no_validators(site: FixtureServer) -> None:
    headers = fetch(site, "http://h.test/error.xml").headers
    assert "etag" not in headers and "last-modified" not in headers


def test_etag_round_trip_gives_304(demo: FixtureServer) -> None:
    first = fetch(demo, "http://www.woshipm.com/feed")
    etag = first.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    second = fetch(demo, "http://www.woshipm.com/feed", headers={"If-None-Match": etag})
    assert (second.status, second.body, second.headers["etag"]) == (304, b"", etag)


@pytest.mark.parametrize(
    ("if_none_match", "status"),
    [('"nope"', 200), ("*", 304), ("W/{etag}", 304), ('"other", {etag}', 304)],
)
def test_if_none_match_forms(demo: FixtureServer, if_none_match: str, status: int) -> None:
    etag = fetch(demo, "http://rsshub.app/woshipm/latest").headers["etag"]
    header = if_none_match.format(etag=etag)
    assert fetch(demo, "http://rsshub.app/woshipm/latest", headers={"If-None-Match": header}).status == status


def test_if_modified_since_gives_304_unless_older(demo: FixtureServer) -> None:
    last_modified = fetch(demo, "http://www.woshipm.com/feed").headers["last-modified"]
    assert fetch(demo, "http://www.woshipm.com/feed", headers={"If-Modified-Since": last_modified}).status == 304
    older = email.utils.format_datetime(email.utils.parsedate_to_datetime(last_modified).replace(year=2000))
    assert fetch(demo, "http://www.woshipm.com/feed", headers={"If-Modified-Since": older}).status == 200
    assert fetch(demo, "http://www.woshipm.com/feed", headers={"If-Modified-Since": "yesterday"}).status == 200


def test_if_none_match_decides_over_if_modified_since(demo: FixtureServer) -> None:
    last_modified = fetch(demo, "http://www.woshipm.com/feed").headers["last-modified"]
    headers = {"If-None-Match": '"stale"', "If-Modified-Since": last_modified}
    assert fetch(demo, "http://www.woshipm.com/feed", headers=headers).status == 200


@pytest.mark.parametrize(
    ("accept_encoding", "gzipped"),
    [("gzip, deflate", True), ("br;q=1.0, gzip;q=0.8", True), ("*", True), ("gzip;q=0", False), ("", False)],
)
def test_gzip_when_accepted(demo: FixtureServer, accept_encoding: str, gzipped: bool) -> None:
    reply = fetch(demo, "http://www.woshipm.com/feed", headers={"Accept-Encoding": accept_encoding})
    original = (DEMO / "www.woshipm.com" / "feed.xml").read_bytes()
    assert reply.headers["vary"] == "Accept-Encoding"
    assert (reply.headers.get("content-encoding") == "gzip") is gzipped
    assert (gzip.decompress(reply.body) if gzipped else reply.body) == original
    assert int(reply.headers["content-length"]) == len(reply.body)


def test_head_sends_headers_only(demo: FixtureServer) -> None:
    reply = fetch(demo, "http://www.woshipm.com/feed", method="HEAD")
    assert reply.status == 200 and reply.body == b""
    assert int(reply.headers["content-length"]) == (DEMO / "www.woshipm.com" / "feed.xml").stat().st_size


@pytest.mark.parametrize(("method", "status"), [("POST", 405), ("DELETE", 405)])
def test_writes_are_refused(demo: FixtureServer, method: str, status: int) -> None:
    assert fetch(demo, "http://www.woshipm.com/feed", method=method).status == status


def test_connect_is_not_implemented(demo: FixtureServer) -> None:
    assert raw_request(demo, "CONNECT www.woshipm.com:443 HTTP/1.1") == 501


@pytest.mark.parametrize(
    "request_line",
    [
        "GET /../secret.txt HTTP/1.1",
        "GET /sub/../../secret.txt HTTP/1.1",
        "GET /%2e%2e/secret.txt HTTP/1.1",
        "GET /..%2fsecret.txt HTTP/1.1",
        "GET http://h.test/../secret.txt HTTP/1.1",
        "GET /escape.txt HTTP/1.1",
    ],
)
def test_nothing_outside_the_root_is_served(site: FixtureServer, request_line: str) -> None:
    assert raw_request(site, request_line) == 403


@pytest.mark.parametrize("host", ["..", "h.test/..", "."])
def test_odd_host_headers_fall_back_to_default(site: FixtureServer, host: str) -> None:
    assert fetch(site, "/", headers={"Host": host}).body == b"<p>default</p>"


def test_robots_from_folder_or_permissive_default(demo: FixtureServer) -> None:
    own = fetch(demo, "http://www.woshipm.com/robots.txt")
    assert own.body == (DEMO / "www.woshipm.com" / "robots.txt").read_bytes()
    default = fetch(demo, "http://rsshub.app/robots.txt")
    assert (default.status, default.body) == (200, b"User-agent: *\nDisallow:\n")


def test_request_log_records_what_tests_need(demo: FixtureServer) -> None:
    demo.reset_log()
    fetch(demo, "http://rsshub.app/woshipm/latest", headers={"User-Agent": "feedloom-test/1"})
    fetch(demo, "/feed", headers={"Host": "www.woshipm.com"})
    first, second = demo.requests
    assert (first.method, first.host, first.path, first.status, first.proxied) == (
        "GET", "rsshub.app", "/woshipm/latest", 200, True,
    )
    assert first.header("user-agent") == "feedloom-test/1"
    assert (second.host, second.path, second.proxied) == ("www.woshipm.com", "/feed", False)
    assert second.header("X-Missing") is None


def test_logged_requests_are_frozen(demo: FixtureServer) -> None:
    fetch(demo, "http://www.woshipm.com/feed")
    entry: LoggedRequest = demo.requests[-1]
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.status = 500  # type: ignore[misc]


def test_reset_log_empties_the_log(demo: FixtureServer) -> None:
    fetch(demo, "http://www.woshipm.com/feed")
    demo.reset_log()
    assert demo.requests == []


def test_server_stops_and_keeps_its_log(tmp_path: Path) -> None:
    with FixtureServer(tmp_path) as server:
        port = server.port
        assert server.url == f"http://127.0.0.1:{port}"
        fetch(server, "/robots.txt")
    assert [r.path for r in server.requests] == ["/robots.txt"]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_root_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError):
        FixtureServer(tmp_path / "missing")


def test_command_line_prints_its_url() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "crawler.testserver", str(DEMO), "--port", "0"],
        cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": url}))
        with opener.open("http://www.woshipm.com/robots.txt", timeout=10) as response:
            assert b"Disallow: /private/" in response.read()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- the demo site -----------------------------------------------------------------------------


def test_demo_feed_list_order() -> None:
    urls = [str(feed["url"]) for feed in load_demo_feeds()]
    assert urls == [*DEMO_FEED_COUNTS, BROKEN_FEED]


@pytest.mark.parametrize(("url", "count"), DEMO_FEED_COUNTS.items())
def test_demo_feed_parses_with_expected_count(demo: FixtureServer, url: str, count: int) -> None:
    reply = fetch(demo, url)
    assert reply.status == 200
    if reply.headers["content-type"] == "application/feed+json":
        # feedparser 6.0 has no JSON Feed reader; check the document against the 1.1 shape instead.
        document = json.loads(reply.body)
        assert document["version"] == "https://jsonfeed.org/version/1.1"
        assert len(document["items"]) == count
        assert all(item["id"] and item["url"] for item in document["items"])
    else:
        parsed = feedparser.parse(reply.body)
        assert not parsed.bozo, parsed.get("bozo_exception")
        assert len(parsed.entries) == count


def test_demo_broken_feed_yields_no_entries(demo: FixtureServer) -> None:
    reply = fetch(demo, BROKEN_FEED)
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("application/rss+xml")
    assert feedparser.parse(reply.body).entries == []


def woshipm_links() -> list[str]:
    links = []
    names = ("www.woshipm.com/feed.xml", "rsshub.app/woshipm/user_article/788034.xml", "rsshub.app/woshipm/latest.xml")
    for name in names:
        links += [entry.link for entry in feedparser.parse((DEMO / name).read_bytes()).entries]
    return links


def test_demo_has_the_cross_feed_duplicate() -> None:
    canonical = [link.split("?", 1)[0] for link in woshipm_links()]
    assert len(canonical) == 10 and len(set(canonical)) == 9
    assert any("utm_source=rss" in link for link in woshipm_links())


@pytest.mark.parametrize("link", sorted(set(woshipm_links())))
def test_demo_article_pages_exist_for_every_woshipm_link(demo: FixtureServer, link: str) -> None:
    reply = fetch(demo, link)
    assert reply.status == 200
    assert reply.headers["content-type"] == "text/html; charset=utf-8"
    assert 4_000 <= len(reply.body) <= 12_000
    assert b'class="article--content' in reply.body and b'class="author--name"' in reply.body


def test_demo_summary_only_json_item_has_a_page(demo: FixtureServer) -> None:
    items = json.loads((DEMO / "newsletter.example.net" / "feed.json").read_bytes())["items"]
    [summary_only] = [item for item in items if "content_html" not in item and "content_text" not in item]
    assert fetch(demo, summary_only["url"]).status == 200


def test_demo_robots_disallows_the_private_page(demo: FixtureServer) -> None:
    robots = fetch(demo, "http://www.woshipm.com/robots.txt").body.decode()
    assert "Disallow: /private/" in robots
    assert fetch(demo, "http://www.woshipm.com/private/").status == 200


# --- feed fixtures for the parser tests -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "count"),
    [("woshipm-seed-like.xml", 1), ("minimal.rss", 2), ("minimal.atom", 2), ("gb18030.xml", 2)],
)
def test_xml_fixture_feeds_parse(name: str, count: int) -> None:
    parsed = feedparser.parse((FIXTURE_FEEDS / name).read_bytes())
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert len(parsed.entries) == count


def test_json_fixture_feed_is_json_feed_1_1() -> None:
    document = json.loads((FIXTURE_FEEDS / "minimal.json").read_bytes())
    assert document["version"] == "https://jsonfeed.org/version/1.1"
    assert len(document["items"]) == 2


def test_gb18030_fixture_needs_more_than_gb2312() -> None:
    data = (FIXTURE_FEEDS / "gb18030.xml").read_bytes()
    assert b'encoding="gb2312"' in data
    with pytest.raises(UnicodeDecodeError):
        data.decode("gb2312")
    assert "王喆" in data.decode("gb18030")


def test_seed_like_fixture_carries_the_clutter() -> None:
    [entry] = feedparser.parse((FIXTURE_FEEDS / "woshipm-seed-like.xml").read_bytes()).entries
    assert urlsplit(entry.link).query == "utm_source=rsshub&utm_medium=rss"
    assert entry.published == "Fri, 28 Jan 2022 00:00:00 GMT"
    assert len(entry.tags) == 3
    raw = (FIXTURE_FEEDS / "woshipm-seed-like.xml").read_text("utf-8")
    markers = ("<blockquote>", 'referrerpolicy="no-referrer"', "<h3>#专栏作家#</h3>", "禁止转载", "<svg", "赞赏</button>")
    assert all(marker in raw for marker in markers)
    assert 'class="button--pay"' in raw
