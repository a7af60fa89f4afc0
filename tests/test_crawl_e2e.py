"""End to end: `feedloom crawl` in a subprocess against the demo site on 127.0.0.1, twice."""

from __future__ import annotations

import json
import sqlite3

import pytest

from crawler.testserver import FixtureServer
from tests.conftest import DEMO_SITE, run_feedloom

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def crawled(tmp_path_factory):
    db = tmp_path_factory.mktemp("e2e") / "feeds.db"
    with FixtureServer(DEMO_SITE) as server:
        imported = run_feedloom("import", str(DEMO_SITE / "feeds.toml"), "--db", str(db))
        assert imported.returncode == 0, imported.stderr
        first = run_feedloom("crawl", "--db", str(db), "--allow-private", "--proxy", server.url)
        snapshot = _snapshot(db)
        server.reset_log()
        second = run_feedloom("crawl", "--db", str(db), "--allow-private", "--proxy", server.url, "--all")
        second_requests = list(server.requests)
    return db, first, snapshot, second, second_requests


def _snapshot(db):
    with sqlite3.connect(db) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("entries", "entry_sightings", "entry_revisions")}


def query(db, sql, *args):
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql, args)]


def test_first_crawl_stores_the_expected_entries(crawled):
    db, first, snapshot, _, _ = crawled
    assert first.returncode == 0, first.stderr + first.stdout
    assert "Traceback" not in first.stderr + first.stdout
    assert "crawled 6 feeds" in first.stdout
    entries = query(db, "SELECT * FROM entries")
    urls = [e["url"] for e in entries]
    assert len(urls) == len(set(urls))
    assert all("utm_" not in (u or "") for u in urls)
    assert all(e["published_at"] is None or e["published_at"].endswith("Z") for e in entries)
    for e in entries:
        assert "<script" not in e["content_html"] and "support-author" not in e["content_html"]
        assert "<svg" not in e["content_html"] and "<button" not in e["content_html"]


def test_cross_feed_duplicate_is_merged(crawled):
    db, first, *_ = crawled
    merged = query(db, "SELECT * FROM entry_sightings WHERE merge_reason IS NOT NULL")
    assert merged, "the article present in two feeds must be one entry with two sightings"
    assert any("canonical URL" in m["merge_reason"] for m in merged)
    assert "merged as duplicates" in first.stdout


def test_broken_feed_is_recorded_with_its_reason(crawled):
    db, first, *_ = crawled
    (broken,) = query(db, "SELECT * FROM feeds WHERE url LIKE '%broken%'")
    assert broken["last_status"] == "error" and broken["last_error"]
    assert broken["consecutive_failures"] == 2  # once per crawl, both recorded
    attempts = query(db, "SELECT * FROM feed_fetches WHERE feed_id = ?", broken["id"])
    assert [a["status"] for a in attempts] == ["error", "error"] and "HTML page" in attempts[0]["error"]
    assert broken["next_check_at"] > broken["last_checked_at"]
    assert "broken.example.com" in first.stdout
    others = query(db, "SELECT * FROM feeds WHERE url NOT LIKE '%broken%'")
    assert all(f["last_status"] in ("ok", "not_modified") and not f["last_error"] for f in others)


def test_second_crawl_gets_304s_and_adds_nothing(crawled):
    db, _, snapshot, second, requests = crawled
    assert second.returncode == 0, second.stderr
    assert _snapshot(db) == snapshot
    feed_requests = [r for r in requests if not r.path.endswith("robots.txt") and r.status in (200, 304)]
    assert any(r.status == 304 for r in feed_requests)
    assert "0 new" in second.stdout
    crawls = query(db, "SELECT * FROM crawls ORDER BY id")
    assert len(crawls) == 2 and crawls[1]["entries_new"] == 0 and crawls[1]["feeds_not_modified"] >= 4


def test_feeds_command_lists_status_and_counts(crawled):
    db, *_ = crawled
    result = run_feedloom("feeds", "--db", str(db), "--json")
    rows = json.loads(result.stdout)
    assert len(rows) == 6
    assert sum(r["entries"] for r in rows) >= len(query(db, "SELECT id FROM entries"))
    table = run_feedloom("feeds", "--db", str(db)).stdout
    assert "人人都是产品经理" in table and "last status" in table
