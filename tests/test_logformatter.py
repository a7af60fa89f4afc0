"""The crawl's log: no DEBUG line per stored entry unless the log shows DEBUG."""

from __future__ import annotations

from crawler.testserver import FixtureServer
from tests.conftest import DEMO_SITE, run_feedloom


def test_stored_entries_are_logged_one_by_one_only_at_debug(tmp_path):
    with FixtureServer(DEMO_SITE) as server:
        logs = {}
        for flag in ("-v", "-vv"):
            db = tmp_path / f"l{flag}.db"
            run_feedloom("import", str(DEMO_SITE / "feeds.toml"), "--db", str(db))
            result = run_feedloom("crawl", "--db", str(db), "--allow-private", "--proxy", server.url, flag)
            assert result.returncode == 0, result.stderr
            logs[flag] = result.stderr
    assert "Scraped from" not in logs["-v"] and "Spider opened" in logs["-v"]
    assert "Scraped from" in logs["-vv"]
