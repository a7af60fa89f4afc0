"""`feedloom parse`: normalized entries as JSON lines, exactly as stored; one clear line for bad input."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import ROOT, run_feedloom

FIXTURES = ROOT / "tests" / "fixtures" / "feeds"
REQUIRED = {"id", "url", "guid", "title", "author", "published_at", "updated_at", "categories", "summary",
            "content_html", "content_text", "cover_image", "language", "word_count"}


def parse(path, *extra):
    result = run_feedloom("parse", str(path), *extra)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return result, lines


def test_seed_shaped_post_comes_out_clean():
    result, (entry,) = parse(FIXTURES / "woshipm-seed-like.xml")
    assert result.returncode == 0, result.stderr
    assert REQUIRED <= entry.keys()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", entry["published_at"])
    assert entry["published_at"] == "2022-01-28T00:00:00Z"
    assert entry["url"].startswith("https://www.woshipm.com/") and "utm_" not in entry["url"] and "#" not in entry["url"]
    assert entry["categories"] and isinstance(entry["categories"], list)
    assert entry["cover_image"].startswith("https://")
    html = entry["content_html"]
    for banned in ("support-author", "<svg", "<button", "<script", "赞赏", "onclick"):
        assert banned not in html
    assert 'referrerpolicy="no-referrer"' in html
    assert "#专栏作家#" not in entry["content_text"] and entry["author_bio"]
    assert entry["language"].startswith("zh") and entry["word_count"] > 100


@pytest.mark.parametrize("name", ["minimal.rss", "minimal.atom", "minimal.json", "gb18030.xml"])
def test_minimal_feeds(name):
    result, entries = parse(FIXTURES / name, "--base-url", "https://example.com/feed")
    assert result.returncode == 0, result.stderr
    assert len(entries) >= 1
    for entry in entries:
        assert REQUIRED <= entry.keys() and entry["id"] and entry["title"]


def test_gb18030_text_is_decoded():
    _, entries = parse(FIXTURES / "gb18030.xml")
    assert any("喆" in (e["title"] + e["content_text"]) for e in entries)


@pytest.mark.parametrize(
    "content, reason",
    [(b"", "empty"), (b"<html><body>hi</body></html>", "HTML page"), (b"\x00\x01\x02garbage", "not a feed")],
)
def test_unusable_input_is_one_line_and_exit_1(tmp_path, content, reason):
    path = tmp_path / "bad.xml"
    path.write_bytes(content)
    result = run_feedloom("parse", str(path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.xml" in lines[0] and reason in lines[0]


def test_missing_file_and_refused_url():
    missing = run_feedloom("parse", "/nonexistent/feed.xml")
    assert missing.returncode == 1 and "/nonexistent/feed.xml" in missing.stderr and "Traceback" not in missing.stderr
    private = run_feedloom("parse", "http://127.0.0.1:9/feed")
    assert private.returncode == 1 and "loopback" in private.stderr
