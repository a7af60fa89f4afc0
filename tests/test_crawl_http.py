"""A feed driven through 200, 304, 301, 404, 410, 429, 500 and a slow answer: the stored status and schedule."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import run_feedloom
from tests.scripted_server import Route, ScriptedServer, rss

pytestmark = pytest.mark.e2e

CASES = {
    "/ok": Route(body=rss("一", "二"), headers={"ETag": '"v1"', "Content-Type": "application/rss+xml"}),
    "/ttl": Route(body=rss("三", ttl=180), headers={"Content-Type": "application/rss+xml"}),
    "/old": Route(status=301, headers={"Location": "/moved"}),
    "/moved": Route(body=rss("四"), headers={"Content-Type": "application/rss+xml"}),
    "/missing": Route(status=404, body=b"nope"),
    "/gone": Route(status=410, body=b"gone"),
    "/busy": Route(status=429, headers={"Retry-After": "7200"}),
    "/broken": Route(status=500, body=b"oops"),
    "/slow": Route(body=rss("五"), delay_s=4),
}


def feeds(db):
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return {r["url"].rsplit("/", 1)[1]: dict(r) for r in conn.execute("SELECT * FROM feeds")}


def hours_from_now(iso, now):
    return (datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) - now) / timedelta(hours=1)


@pytest.fixture(scope="module")
def crawled(tmp_path_factory):
    db = tmp_path_factory.mktemp("http") / "feeds.db"
    with ScriptedServer() as server:
        for path, route in CASES.items():
            server.route(path, route)
        feed_list = db.parent / "feeds.toml"
        feed_list.write_text("".join(f'[[feeds]]\nurl = "{server.url}{path}"\n' for path in CASES if path != "/moved"))
        assert run_feedloom("import", str(feed_list), "--db", str(db)).returncode == 0
        started = datetime.now(UTC)
        first = run_feedloom("crawl", "--db", str(db), "--allow-private", "-s", "DOWNLOAD_TIMEOUT=2")
        after_first = feeds(db)
        second = run_feedloom("crawl", "--db", str(db), "--allow-private", "--feed", str(after_first["ok"]["id"]))
        ok_hits = server.hits_for("/ok")
    return db, first, after_first, second, feeds(db), ok_hits, started


def test_first_crawl_summary(crawled):
    _, first, *_ = crawled
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stdout + first.stderr
    assert "3 fetched" in first.stdout and "5 failed" in first.stdout


def test_ok_stores_validators_and_304_is_cheap(crawled):
    _, _, before, second, after, ok_hits, _ = crawled
    assert before["ok"]["etag"] == '"v1"' and before["ok"]["last_status"] == "ok"
    assert ok_hits[-1].headers.get("if-none-match") == '"v1"'
    assert after["ok"]["last_status"] == "not_modified" and "1 not modified" in second.stdout


def test_ttl_sets_a_floor_on_the_interval(crawled):
    *_, started = crawled
    row = crawled[2]["ttl"]
    assert hours_from_now(row["next_check_at"], started) >= 3 - 0.01


def test_permanent_redirect_updates_the_url(crawled):
    after = crawled[2]
    assert "moved" in after and after["moved"]["moved_from"].endswith("/old")
    assert after["moved"]["last_status"] == "ok"


@pytest.mark.parametrize("name, error", [("missing", "HTTP 404"), ("broken", "HTTP 500"), ("slow", "timed out")])
def test_errors_back_off(crawled, name, error):
    row = crawled[2][name]
    assert row["last_status"] == "error" and error in row["last_error"]
    assert row["consecutive_failures"] == 1 and row["active"] == 1
    assert 60 <= row["check_interval_s"] <= 24 * 3600


def test_gone_deactivates_with_reason(crawled):
    row = crawled[2]["gone"]
    assert row["active"] == 0 and "410" in row["deactivated_reason"]


def test_retry_after_is_honoured(crawled):
    *_, started = crawled
    row = crawled[2]["busy"]
    assert "Retry-After" in row["last_error"]
    assert hours_from_now(row["next_check_at"], started) >= 2 - 0.01


def test_every_attempt_is_logged(crawled):
    db = crawled[0]
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT status, duration_ms, error FROM feed_fetches").fetchall()
    assert len(rows) == 9
    assert all(r[1] is not None for r in rows)


def test_status_command_counts_health(crawled):
    db = crawled[0]
    out = run_feedloom("status", "--db", str(db)).stdout
    assert "3 healthy, 4 failing, 1 deactivated" in out


def test_components_turned_off_are_not_even_imported():
    """Cookies are off and RemoteControl unconfigured: their modules (tldextract, aiohttp) cost every crawl."""
    from scrapy.utils.project import get_project_settings

    settings = get_project_settings()
    assert not settings.getbool("COOKIES_ENABLED")
    assert not any(str(path).endswith(".CookiesMiddleware") for path in settings.getwithbase("DOWNLOADER_MIDDLEWARES"))
    assert not any(str(path).endswith(".RemoteControl") for path in settings.getwithbase("EXTENSIONS"))
    assert any(str(path).endswith(".RedirectMiddleware") for path in settings.getwithbase("DOWNLOADER_MIDDLEWARES"))


def test_feeds_of_one_host_reuse_their_connections(tmp_path):
    """100 feeds on one server: connections kept alive and reused, not one opened (and closed) per feed."""
    from crawler.testserver import FixtureServer

    site = tmp_path / "site" / "_default"
    site.mkdir(parents=True)
    for n in range(100):
        (site / f"f{n}.xml").write_bytes(rss(f"第{n}篇"))
    db = tmp_path / "feeds.db"
    with FixtureServer(tmp_path / "site") as server:
        feed_list = tmp_path / "feeds.toml"
        feed_list.write_text("".join(f'[[feeds]]\nurl = "{server.url}/f{n}.xml"\n' for n in range(100)))
        assert run_feedloom("import", str(feed_list), "--db", str(db)).returncode == 0
        assert run_feedloom("crawl", "--db", str(db), "--allow-private").returncode == 0
        feeds_asked = [r for r in server.requests if r.path.endswith(".xml")]
    assert len(feeds_asked) == 100
    # Scrapy's own handler opened 88 connections for these 100 feeds; ours about 30 (CONCURRENT_REQUESTS is 32).
    assert len({r.client_port for r in feeds_asked}) <= 40


def test_the_crawl_loads_the_normalizers_only_when_an_entry_needs_them():
    """An unchanged re-crawl (all 304) never normalizes: lxml.html, nh3 and ~90 regexes stay unloaded."""
    import subprocess
    import sys

    code = (
        "import sys, crawler.spiders.feeds, crawler.workers, pipelines.stages, pipelines.store;"
        "print(sorted(m for m in ('pipelines.html', 'pipelines.metadata') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
