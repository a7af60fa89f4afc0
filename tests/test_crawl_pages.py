"""Article pages in a real crawl: a per-feed cap, failures kept with the reason, later crawls finish the rest."""

from __future__ import annotations

import sqlite3

import pytest

from tests.conftest import run_feedloom
from tests.scripted_server import Route, ScriptedServer

pytestmark = pytest.mark.e2e

ITEMS = 5


def summary_feed(base: str) -> bytes:
    items = "".join(
        f"<item><title>Post {i}</title><link>{base}/p/{i}</link><guid>{base}/p/{i}</guid>"
        f"<pubDate>Mon, 0{i + 1} Jan 2024 10:00:00 GMT</pubDate><description>The first line of post {i}…</description></item>"
        for i in range(ITEMS)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Summaries</title>{items}</channel></rss>'.encode()


def page(i: int) -> bytes:
    body = "".join(f"<p>Paragraph {n} of post {i}, long enough to be read as the article body by the fallback.</p>" for n in range(8))
    return (
        f"<html lang='en'><head><title>Post {i}</title><meta name='author' content='Ada Writer'></head>"
        f"<body><nav>menu</nav><article><h1>Post {i}</h1>{body}</article><footer>foot</footer></body></html>"
    ).encode()


def entries(db):
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return {r["url"].rsplit("/", 1)[1]: dict(r) for r in conn.execute("SELECT * FROM entries")}


def test_page_cap_defers_the_rest_to_the_next_crawl(tmp_path):
    db = tmp_path / "feeds.db"
    with ScriptedServer() as server:
        server.route("/feed", Route(body=summary_feed(server.url), headers={"Content-Type": "application/rss+xml"}))
        for i in range(ITEMS):
            status = 500 if i == ITEMS - 1 else 200
            server.route(f"/p/{i}", Route(status=status, body=page(i), headers={"Content-Type": "text/html"}))
        assert run_feedloom("add", server.url + "/feed", "--db", str(db)).returncode == 0
        first = run_feedloom("crawl", "--db", str(db), "--allow-private", "-s", "FEEDLOOM_MAX_PAGES_PER_FEED=2")
        assert first.returncode == 0, first.stderr
        after_first = entries(db)
        assert len(after_first) == ITEMS
        completed = [e for e in after_first.values() if e["content_source"] == "page"]
        deferred = [e for e in after_first.values() if (e["page_error"] or "").startswith("article page deferred")]
        assert len(completed) == 2 and len(deferred) == ITEMS - 2
        assert all("Paragraph 7" in e["content_text"] and e["author"] == "Ada Writer" for e in completed)
        assert "2 entries completed from their pages" in first.stdout

        for _ in range(2):
            more = run_feedloom("crawl", "--db", str(db), "--allow-private", "--all")
            assert more.returncode == 0, more.stderr
        final = entries(db)
        assert len(final) == ITEMS
        assert sum(e["content_source"] == "page" for e in final.values()) == ITEMS - 1
        failed = final[str(ITEMS - 1)]
        assert failed["content_source"] == "feed" and "HTTP 500" in failed["page_error"]
        assert failed["content_text"].startswith("The first line")
        fetched = [h.path for h in server.hits if h.path.startswith("/p/") and h.path != f"/p/{ITEMS - 1}"]
        assert sorted(fetched) == sorted(set(fetched)), "a completed page is never fetched twice"
