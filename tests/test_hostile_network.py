"""Hostile networks: internal addresses on the first hop and on every redirect, credentials, bombs, drips, loops.

The crawls run as subprocesses against tests.scripted_server. To prove a refusal, the crawl
runs WITHOUT --allow-private and the server must log no request at all. To prove the check on
redirect hops, "localhost" is listed in FEEDLOOM_ALLOWED_HOSTS: it plays the public site whose
redirect points inside (127.0.0.1 and its spellings reach the same server, so a hop that got
through would show up in the server's log).
"""

from __future__ import annotations

import gzip
import os
import sqlite3
import time
from types import SimpleNamespace

import pytest
from scrapy import Request
from scrapy.downloadermiddlewares.defaultheaders import DefaultHeadersMiddleware
from scrapy.downloadermiddlewares.redirect import RedirectMiddleware
from scrapy.http import Response
from scrapy.settings import Settings

from crawler.middlewares import (
    AddressGuardMiddleware,
    BlockedAddress,
    CrossOriginCredentialsMiddleware,
    legacy_ipv4,
    refused_address,
    refused_host,
)
from tests.hostile_server import (
    DRIPPED_HEADERS,
    MIB,
    RSS_HEADERS,
    DripServer,
    add_feeds,
    brotli_bomb,
    crawl_with_settings,
    deflate_bomb,
    feedloom_measured,
    feeds_by_path,
    gzip_bomb,
    quadratic_blowup,
    rss,
)
from tests.scripted_server import Route, ScriptedServer

pytestmark = pytest.mark.e2e

SECRET = rss([("SECRET", "http://example.com/secret")])

# --- the address rules, without a network ----------------------------------------------------


@pytest.mark.parametrize(
    "address, reason",
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("[::1]", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped IPv6
        ("::ffff:7f00:1", "loopback"),
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
        ("2002:7f00:1::1", "loopback"),  # 6to4 of 127.0.0.1
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("fd00:ec2::254", "private"),  # AWS metadata over IPv6
        ("fec0::1", "private"),  # site-local
        ("::ffff:10.0.0.1", "private"),
        ("192.0.0.8", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.254", "carrier-grade NAT"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "private"),
        ("255.255.255.255", "private"),
    ],
)
def test_internal_addresses_are_refused(address, reason):
    why = refused_address(address)
    assert why is not None and reason in why


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"])
def test_public_addresses_pass(address):
    assert refused_address(address) is None


@pytest.mark.parametrize(
    "host, quad",
    [("2130706433", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("127.1", "127.0.0.1"), ("017700000001", "127.0.0.1"),
     ("0x7f000001", "127.0.0.1"), ("0177.0.0.01", "127.0.0.1"), ("10.1", "10.0.0.1"), ("0", "0.0.0.0")],
)
def test_legacy_ipv4_spellings_are_read_like_a_resolver_reads_them(host, quad):
    assert legacy_ipv4(host) == quad
    assert refused_host(host) is not None


@pytest.mark.parametrize("host", ["example.com", "1e100.net", "deadbeef.example", "xn--fiqs8s.cn", "134744072"])
def test_names_and_public_spellings_are_left_to_dns(host):
    assert refused_host(host) is None  # 134744072 is 8.8.8.8


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "localhost.", "api.localhost"])
def test_localhost_names_are_refused(host):
    assert refused_host(host) == "a loopback address"


def test_allowed_hosts_exempt_exactly_their_names():
    assert refused_host("localhost", frozenset({"localhost"})) is None
    assert refused_host("localhost.", frozenset({"localhost"})) is None
    assert refused_host("api.localhost", frozenset({"localhost"})) is not None
    assert refused_host("127.0.0.1", frozenset({"localhost"})) is not None


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://example.com/feed", "data:text/xml,<rss/>", "s3://bucket/feed", "gopher://example.com/",
     "http://127.0.0.1/feed", "http://[::1]:8080/", "http://2130706433/", "http://169.254.169.254/latest/meta-data/"],
)
def test_guard_middleware_refuses(url):
    with pytest.raises(BlockedAddress):
        AddressGuardMiddleware().process_request(Request(url))


def test_allow_private_permits_internal_but_never_other_schemes():
    guard = AddressGuardMiddleware(allow_private=True)
    assert guard.process_request(Request("http://127.0.0.1/feed")) is None
    with pytest.raises(BlockedAddress):
        guard.process_request(Request("file:///etc/passwd"))


# --- credentials across origins, through Scrapy's own redirect middleware ----------------------

CREDENTIALS = {"Authorization": "Bearer s3cret", "Cookie": "session=s3cret", "Proxy-Authorization": "Basic czNjcmV0"}


def _redirect_chain(start: str, location: str) -> Request:
    """The request Scrapy builds for a redirect, after the downloader middlewares that run on it."""
    crawler = SimpleNamespace(spider=None, settings=Settings({"DEFAULT_REQUEST_HEADERS": CREDENTIALS}))
    redirect = RedirectMiddleware(Settings({"REDIRECT_ENABLED": True, "REDIRECT_MAX_TIMES": 10}))
    redirect.crawler = crawler  # type: ignore[assignment]
    defaults = DefaultHeadersMiddleware(CREDENTIALS.items())
    first = Request(start)
    defaults.process_request(first)
    hop = redirect.process_response(first, Response(start, status=302, headers={"Location": location}))
    assert isinstance(hop, Request)
    defaults.process_request(hop)  # puts configured headers back on every request
    CrossOriginCredentialsMiddleware().process_request(hop)
    return hop


@pytest.mark.parametrize(
    "location",
    ["https://other.example/feed", "http://feeds.example:8080/feed", "https://feeds.example/feed", "http://sub.feeds.example/feed"],
)
def test_no_credentials_follow_a_redirect_to_another_origin(location):
    hop = _redirect_chain("http://feeds.example/feed", location)
    for name in CREDENTIALS:
        assert name.encode() not in hop.headers


def test_credentials_stay_on_the_same_origin():
    hop = _redirect_chain("http://feeds.example/feed", "/moved")
    assert hop.headers.get("Authorization") == b"Bearer s3cret"
    assert hop.headers.get("Cookie") == b"session=s3cret"


# --- crawls -------------------------------------------------------------------------------------

FIRST_HOPS = {
    "loopback": "127.0.0.1:{port}",
    "localhost": "localhost:{port}",
    "decimal": "2130706433:{port}",
    "hex": "0x7f.1:{port}",
    "short": "127.1:{port}",
    "octal": "017700000001:{port}",
    "v6loopback": "[::1]:{port}",
    "mapped": "[::ffff:7f00:1]:{port}",
    "metadata": "169.254.169.254",
    "private": "10.0.0.1",
    "cgnat": "100.64.0.1",
    "unspecified": "0.0.0.0:{port}",
}


@pytest.fixture(scope="module")
def first_hop(tmp_path_factory):
    """Feeds whose own URL is internal, crawled without --allow-private."""
    db = tmp_path_factory.mktemp("first-hop") / "feeds.db"
    with ScriptedServer() as server:
        port = server.url.rsplit(":", 1)[1]
        server.route("/robots.txt", Route(body=b"User-agent: *\nDisallow:\n"))
        for name in FIRST_HOPS:
            server.route(f"/{name}", Route(body=SECRET, headers=RSS_HEADERS))
        add_feeds(db, [f"http://{host.format(port=port)}/{name}" for name, host in FIRST_HOPS.items()])
        result = feedloom_measured("crawl", "--db", str(db), "-q")
        hits = list(server.hits)
    return result, feeds_by_path(db), hits


def test_first_hop_internal_addresses_get_no_request_at_all(first_hop):
    result, _, hits = first_hop
    assert "Traceback" not in result.stdout + result.stderr
    assert hits == []  # not the feed, not robots.txt


@pytest.mark.parametrize("name", FIRST_HOPS)
def test_first_hop_refusal_is_recorded_with_its_reason(first_hop, name):
    row = first_hop[1][f"/{name}"]
    assert row["last_status"] == "error"
    assert "refused" in row["last_error"] and "--allow-private" in row["last_error"]


REDIRECT_TARGETS = {
    "loopback": "http://127.0.0.1:{port}/secret",
    "decimal": "http://2130706433:{port}/secret",
    "hex": "http://0x7f.1:{port}/secret",
    "short": "http://127.1:{port}/secret",
    "mapped": "http://[::ffff:127.0.0.1]:{port}/secret",
    "v6loopback": "http://[::1]:{port}/secret",
    "metadata": "http://169.254.169.254/latest/meta-data/",
    "private": "http://10.0.0.1/secret",
    "unspecified": "http://0.0.0.0:{port}/secret",
}
BAD_SCHEMES = {"file": "file:///etc/passwd", "ftp": "ftp://127.0.0.1/feed", "data": "data:text/xml,<rss/>"}


@pytest.fixture(scope="module")
def redirect_hops(tmp_path_factory):
    """A "public" site (localhost, allowed by name) whose redirects, pages and robots.txt point inside.

    Run with DEFAULT_REQUEST_HEADERS carrying credentials, to see which hops receive them.
    """
    db = tmp_path_factory.mktemp("redirects") / "feeds.db"
    with ScriptedServer() as site, ScriptedServer() as other:
        port = site.url.rsplit(":", 1)[1]
        other_port = other.url.rsplit(":", 1)[1]
        public = f"http://localhost:{port}"
        site.route("/robots.txt", Route(status=302, headers={"Location": f"http://127.0.0.1:{port}/robots-secret"}))
        site.route("/secret", Route(body=SECRET, headers=RSS_HEADERS))
        site.route("/robots-secret", Route(body=b"User-agent: *\nDisallow:\n"))
        for name, target in {**REDIRECT_TARGETS, **BAD_SCHEMES}.items():
            site.route(f"/to-{name}", Route(status=302, headers={"Location": target.format(port=port)}))
        site.route("/hop1", Route(status=301, headers={"Location": "/hop2"}))
        site.route("/hop2", Route(status=307, headers={"Location": f"http://127.0.0.1:{port}/secret"}))
        refresh = f'<html><head><meta http-equiv="refresh" content="0;url=http://127.0.0.1:{port}/secret"></head></html>'
        site.route("/meta-refresh", Route(body=refresh.encode(), headers={"Content-Type": "text/html"}))
        site.route("/ok", Route(body=rss([("fine", "http://example.com/fine")]), headers=RSS_HEADERS))
        summary_only = (
            '<?xml version="1.0"?><rss version="2.0"><channel><title>p</title><item><title>t</title>'
            f"<link>http://127.0.0.1:{port}/page</link><guid>page-1</guid><description>short</description></item>"
            "</channel></rss>"
        )
        site.route("/summaries", Route(body=summary_only.encode(), headers=RSS_HEADERS))
        site.route("/page", Route(body=b"<html><body><article>secret page</article></body></html>"))
        site.route("/cred-same", Route(status=302, headers={"Location": "/landing"}))
        site.route("/landing", Route(body=rss([("same", "http://example.com/same")]), headers=RSS_HEADERS))
        site.route("/cred-cross", Route(status=302, headers={"Location": f"http://localhost:{other_port}/landing"}))
        other.route("/landing", Route(body=rss([("other", "http://example.com/other")]), headers=RSS_HEADERS))
        paths = [f"/to-{n}" for n in {**REDIRECT_TARGETS, **BAD_SCHEMES}]
        paths += ["/hop1", "/meta-refresh", "/ok", "/summaries", "/cred-same", "/cred-cross"]
        add_feeds(db, [public + p for p in paths])
        result = crawl_with_settings(
            db, {"FEEDLOOM_ALLOWED_HOSTS": ["localhost"], "DEFAULT_REQUEST_HEADERS": CREDENTIALS, "LOG_ENABLED": True}
        )
        site_hits, other_hits = list(site.hits), list(other.hits)
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        entries = [dict(r) for r in conn.execute("SELECT * FROM entries")]
    return SimpleNamespace(result=result, feeds=feeds_by_path(db), site_hits=site_hits, other_hits=other_hits, entries=entries)


def test_redirect_crawl_runs_clean(redirect_hops):
    assert redirect_hops.result.returncode == 0, redirect_hops.result.stderr[-2000:]
    assert "Traceback" not in redirect_hops.result.stderr
    assert redirect_hops.feeds["/ok"]["last_status"] == "ok"  # the allowed name itself works


def test_no_hop_reached_an_internal_address(redirect_hops):
    internal = [h for h in redirect_hops.site_hits if not h.headers.get("host", "").startswith("localhost")]
    assert internal == []
    paths = {h.path for h in redirect_hops.site_hits}
    assert not paths & {"/secret", "/robots-secret", "/page"}


@pytest.mark.parametrize("name", [*REDIRECT_TARGETS, "hop1", "meta-refresh"])
def test_redirect_into_the_network_is_a_recorded_refusal(redirect_hops, name):
    row = redirect_hops.feeds[f"/to-{name}" if name in REDIRECT_TARGETS else f"/{name}"]
    assert row["last_status"] == "error"
    assert "refused" in row["last_error"]


@pytest.mark.parametrize("name", BAD_SCHEMES)
def test_redirect_to_another_scheme_is_a_recorded_error(redirect_hops, name):
    row = redirect_hops.feeds[f"/to-{name}"]
    assert row["last_status"] == "error" and "Location" in row["last_error"]


def test_article_page_on_an_internal_address_is_refused_and_the_entry_kept(redirect_hops):
    assert redirect_hops.feeds["/summaries"]["last_status"] == "ok"
    (entry,) = [e for e in redirect_hops.entries if e["guid"] == "page-1"]
    assert entry["content_source"] == "feed"
    assert "refused" in entry["page_error"]


def test_credentials_reach_the_same_origin_only(redirect_hops):
    landing = [h for h in redirect_hops.site_hits if h.path == "/landing"]
    assert landing and landing[0].headers.get("authorization") == "Bearer s3cret"
    assert landing[0].headers.get("cookie") == "session=s3cret"
    (cross,) = [h for h in redirect_hops.other_hits if h.path == "/landing"]
    assert not {"authorization", "cookie", "proxy-authorization"} & cross.headers.keys()
    assert redirect_hops.feeds["/cred-cross"]["last_status"] == "ok"


def test_no_proxy_authorization_is_sent_without_a_proxy(redirect_hops):
    assert all("proxy-authorization" not in h.headers for h in redirect_hops.site_hits + redirect_hops.other_hits)


# --- resource limits ------------------------------------------------------------------------------

TIMEOUT_S = 3


def _limits_routes() -> dict[str, Route]:
    ok = rss([("unaffected", "http://example.com/unaffected")])
    return {
        "/ok": Route(body=ok, headers=RSS_HEADERS),
        "/loop": Route(status=302, headers={"Location": "/loop"}),
        "/ping": Route(status=302, headers={"Location": "/pong"}),
        "/pong": Route(status=302, headers={"Location": "/ping"}),
        "/drip": Route(body=ok, headers=RSS_HEADERS, drip_s=1.0),
        "/slow-headers": Route(body=ok, headers=RSS_HEADERS, delay_s=TIMEOUT_S + 4),
        "/gzip-bomb": Route(body=gzip_bomb(1024 * MIB), headers={**RSS_HEADERS, "Content-Encoding": "gzip"}),
        "/br-bomb": Route(body=brotli_bomb(1024 * MIB), headers={**RSS_HEADERS, "Content-Encoding": "br"}),
        "/deflate-bomb": Route(body=deflate_bomb(256 * MIB), headers={**RSS_HEADERS, "Content-Encoding": "deflate"}),
        "/double-gzip": Route(body=gzip.compress(gzip_bomb(256 * MIB)), headers={**RSS_HEADERS, "Content-Encoding": "gzip, gzip"}),
        "/bad-gzip": Route(body=b"this is not gzip", headers={**RSS_HEADERS, "Content-Encoding": "gzip"}),
        "/huge-declared": Route(body=b"<rss>" + b" " * (20 * MIB) + b"</rss>", headers=RSS_HEADERS),
        "/huge-stream": Route(headers=RSS_HEADERS, stream=lambda: (b" " * MIB for _ in range(64))),
        "/png": Route(body=b"\x89PNG\r\n\x1a\n" + os.urandom(4096), headers={"Content-Type": "image/png"}),
        "/xml-bomb": Route(body=quadratic_blowup(), headers=RSS_HEADERS),
    }


@pytest.fixture(scope="module")
def limits(tmp_path_factory):
    db = tmp_path_factory.mktemp("limits") / "feeds.db"
    routes = _limits_routes()
    with ScriptedServer() as server, DripServer(DRIPPED_HEADERS, 0.1) as drip:
        for path, route in routes.items():
            server.route(path, route)
        add_feeds(db, [server.url + p for p in routes if p != "/pong"] + [drip.url + "/headers-drip"])
        result = feedloom_measured("crawl", "--db", str(db), "--allow-private", "-q", "-s", f"DOWNLOAD_TIMEOUT={TIMEOUT_S}")
        hits = list(server.hits)
    with sqlite3.connect(db) as conn:
        titles = [r[0] for r in conn.execute("SELECT title FROM entries")]
    return SimpleNamespace(result=result, feeds=feeds_by_path(db), hits=hits, titles=titles, db=db)


def test_limits_crawl_is_bounded_in_time_and_memory(limits):
    assert limits.result.returncode == 0, limits.result.stderr[-2000:]
    assert "Traceback" not in limits.result.stdout + limits.result.stderr
    # Timeouts of 3 s and bombs of 1 GiB: the whole crawl is a few seconds and a few hundred MB at most.
    assert limits.result.seconds < 45
    assert limits.result.peak_mb < 600


def test_other_feeds_are_unaffected(limits):
    assert limits.feeds["/ok"]["last_status"] == "ok"
    assert "unaffected" in limits.titles


@pytest.mark.parametrize(
    "path, error",
    [
        ("/loop", "max redirections"),
        ("/ping", "max redirections"),
        ("/drip", "timed out"),
        ("/slow-headers", "timed out"),
        ("/headers-drip", "timed out"),
        ("/gzip-bomb", "DOWNLOAD_MAXSIZE"),
        ("/br-bomb", "DOWNLOAD_MAXSIZE"),
        ("/deflate-bomb", "DOWNLOAD_MAXSIZE"),
        ("/double-gzip", "DOWNLOAD_MAXSIZE"),
        ("/bad-gzip", "gzip"),
        ("/huge-declared", "max size"),
        ("/huge-stream", "max size"),
        ("/png", "not a feed: the response is a PNG image"),
        ("/xml-bomb", "entity"),
    ],
)
def test_each_attack_is_a_recorded_error(limits, path, error):
    row = limits.feeds[path]
    assert row["last_status"] == "error"
    assert error in row["last_error"], row["last_error"]


def test_redirect_loop_stops_after_ten_redirects(limits):
    assert 1 < len([h for h in limits.hits if h.path == "/loop"]) <= 11
    assert len([h for h in limits.hits if h.path in ("/ping", "/pong")]) <= 11


def test_drip_is_cut_at_the_deadline(limits):
    feed_id = limits.feeds["/drip"]["id"]
    with sqlite3.connect(limits.db) as conn:
        (duration,) = conn.execute("SELECT duration_ms FROM feed_fetches WHERE feed_id = ?", [feed_id]).fetchone()
    # The body (a few hundred bytes at one a second) would take minutes; the deadline holds for all of it.
    assert TIMEOUT_S * 1000 <= duration < (TIMEOUT_S + 3) * 1000


# --- the guarded fetch of one-off commands (feedloom parse URL, recipes check --live) ---------------


@pytest.fixture(scope="module")
def fetch_site():
    with ScriptedServer() as site:
        port = site.url.rsplit(":", 1)[1]
        site.route("/ok", Route(body=SECRET, headers=RSS_HEADERS))
        site.route("/drip", Route(body=SECRET, headers=RSS_HEADERS, drip_s=0.5))
        site.route("/gzip-bomb", Route(body=gzip_bomb(64 * MIB), headers={**RSS_HEADERS, "Content-Encoding": "gzip"}))
        site.route("/two-members", Route(body=gzip.compress(b"<rss>") + gzip.compress(b"</rss>"), headers={"Content-Encoding": "gzip"}))
        site.route("/loop", Route(status=302, headers={"Location": "/loop"}))
        site.route("/to-file", Route(status=302, headers={"Location": "file:///etc/passwd"}))
        for name, target in REDIRECT_TARGETS.items():
            site.route(f"/to-{name}", Route(status=302, headers={"Location": target.format(port=port)}))
        yield site


@pytest.fixture()
def short_deadline(monkeypatch):
    import crawler.fetch

    monkeypatch.setattr(crawler.fetch, "DOWNLOAD_TIMEOUT", 2)


@pytest.fixture()
def localhost_is_public(monkeypatch):
    """Treat the name "localhost" as a public site, everything else as the real rules say."""
    import crawler.fetch
    import crawler.middlewares

    monkeypatch.setattr(crawler.fetch, "refused_host", lambda host, allowed=(): crawler.middlewares.refused_host(host, {"localhost"}))
    real = crawler.middlewares.refused_address
    monkeypatch.setattr(crawler.fetch, "refused_address", lambda a: None if a in ("127.0.0.1", "::1") else real(a))


def test_fetch_refuses_internal_addresses_without_a_request(fetch_site):
    from crawler.fetch import FetchError, fetch_url

    fetch_site.hits.clear()
    for host in ("127.0.0.1", "localhost", "2130706433", "0x7f.1", "[::ffff:7f00:1]"):
        with pytest.raises(FetchError, match="refused"):
            fetch_url(f"http://{host}:{fetch_site.url.rsplit(':', 1)[1]}/ok")
    assert fetch_site.hits == []


@pytest.mark.parametrize("name", [n for n in REDIRECT_TARGETS if n != "loopback"])
def test_fetch_checks_every_redirect_hop(fetch_site, localhost_is_public, name):
    from crawler.fetch import FetchError, fetch_url

    port = fetch_site.url.rsplit(":", 1)[1]
    fetch_site.hits.clear()
    with pytest.raises(FetchError, match="refused"):
        fetch_url(f"http://localhost:{port}/to-{name}")
    assert [h.path for h in fetch_site.hits] == [f"/to-{name}"]


def test_fetch_limits(fetch_site, short_deadline):
    from crawler.fetch import FetchError, fetch_url

    url = fetch_site.url
    assert b"SECRET" in fetch_url(url + "/ok", allow_private=True)[0]
    assert fetch_url(url + "/two-members", allow_private=True)[0] == b"<rss></rss>"
    for path, message in [("/loop", "more than 10 redirects"), ("/to-file", "only http and https"), ("/gzip-bomb", "larger than")]:
        with pytest.raises(FetchError, match=message):
            fetch_url(url + path, allow_private=True)


@pytest.mark.parametrize("server", ["body", "headers"])
def test_fetch_deadline_holds_against_a_drip(fetch_site, short_deadline, server):
    from crawler.fetch import FetchError, fetch_url

    started = time.monotonic()
    with pytest.raises(FetchError, match="timed out"):
        if server == "body":
            fetch_url(fetch_site.url + "/drip", allow_private=True)
        else:
            with DripServer(DRIPPED_HEADERS, 0.05) as drip:
                fetch_url(drip.url + "/", allow_private=True)
    assert time.monotonic() - started < 4
