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
        # Forget the validators: feeds answer 200 again, but unchanged entries need no page fetch.
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE feeds SET etag = NULL, last_modified = NULL")
        server.reset_log()
        third = run_feedloom("crawl", "--db", str(db), "--allow-private", "--proxy", server.url, "--all")
        third_requests = list(server.requests)
    return db, first, snapshot, second, second_requests, third, third_requests


def _snapshot(db):
    with sqlite3.connect(db) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("entries", "entry_sightings", "entry_revisions")}


def query(db, sql, *args):
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql, args)]


def test_first_crawl_stores_the_expected_entries(crawled):
    db, first, snapshot, *_ = crawled
    assert first.returncode == 0, first.stderr + first.stdout
    assert "Traceback" not in first.stderr + first.stdout
    assert "crawled 6 feeds" in first.stdout
    assert "entries: 15 new, 0 updated, 1 merged as duplicates" in first.stdout
    assert snapshot["entries"] == 15  # what the summary reports is what the database holds
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
    assert broken["consecutive_failures"] == 3  # once per crawl, each recorded
    attempts = query(db, "SELECT * FROM feed_fetches WHERE feed_id = ?", broken["id"])
    assert [a["status"] for a in attempts] == ["error"] * 3 and "HTML page" in attempts[0]["error"]
    assert broken["next_check_at"] > broken["last_checked_at"]
    assert "broken.example.com" in first.stdout
    others = query(db, "SELECT * FROM feeds WHERE url NOT LIKE '%broken%'")
    assert all(f["last_status"] in ("ok", "not_modified") and not f["last_error"] for f in others)


def test_second_crawl_gets_304s_and_adds_nothing(crawled):
    db, _, snapshot, second, requests, *_ = crawled
    assert second.returncode == 0, second.stderr
    assert _snapshot(db) == snapshot
    feed_requests = [r for r in requests if not r.path.endswith("robots.txt") and r.status in (200, 304)]
    assert any(r.status == 304 for r in feed_requests)
    assert "0 new" in second.stdout
    crawls = query(db, "SELECT * FROM crawls ORDER BY id")
    assert len(crawls) == 3 and crawls[1]["entries_new"] == 0 and crawls[1]["feeds_not_modified"] >= 4


def test_summary_entries_are_completed_from_their_pages(crawled):
    db, first, *_ = crawled
    assert "entries completed from their pages" in first.stdout
    latest = query(
        db,
        "SELECT e.* FROM entries e JOIN entry_sightings s ON s.entry_id = e.id JOIN feeds f ON f.id = s.feed_id"
        " WHERE f.url LIKE '%woshipm/latest'",
    )
    assert len(latest) == 3
    for entry in latest:
        assert entry["content_source"] == "page" and entry["page_method"] == "recipe:woshipm"
        assert entry["author"] and entry["columnist_id"]
        assert len(json.loads(entry["categories"])) > 3  # the feed's labels plus the page's tags
        assert len(entry["content_text"]) > 300
        assert "support-author" not in entry["content_html"]


def test_columnists_are_one_per_person(crawled):
    db, *_ = crawled
    people = query(db, "SELECT * FROM columnists WHERE name = '沈砚秋'")
    assert len(people) == 1 and people[0]["post_count"] == 3 and people[0]["profile_url"].endswith("/u/788034")
    assert not query(db, "SELECT * FROM columnists WHERE name = '人人都是产品经理'")
    out = run_feedloom("columnists", "--db", str(db)).stdout
    assert "沈砚秋" in out and "woshipm.com" in out


def test_unchanged_entries_do_not_refetch_their_pages(crawled):
    *_, third, third_requests = crawled
    assert third.returncode == 0, third.stderr
    pages = [r for r in third_requests if r.path.endswith(".html") or r.path.endswith("/")]
    assert pages == [], [r.path for r in pages]
    assert "0 new, 0 updated" in third.stdout


def test_feeds_command_lists_status_and_counts(crawled):
    db, *_ = crawled
    result = run_feedloom("feeds", "--db", str(db), "--json")
    rows = json.loads(result.stdout)
    assert len(rows) == 6
    assert sum(r["entries"] for r in rows) >= len(query(db, "SELECT id FROM entries"))
    table = run_feedloom("feeds", "--db", str(db)).stdout
    assert "人人都是产品经理" in table and "last status" in table
