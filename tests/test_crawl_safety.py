"""One crawl at a time, and a crawl killed with SIGKILL leaves a consistent database the next run completes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from pipelines.store import Store
from tests.conftest import ROOT, run_feedloom
from tests.scripted_server import Route, ScriptedServer

pytestmark = pytest.mark.e2e

FEEDS = 30
ITEMS = 8


def feed_body(n: int) -> bytes:
    items = "".join(
        f"<item><title>第{n}号源 第{i}篇</title><link>http://example.com/f{n}/p{i}</link>"
        f"<pubDate>Mon, 01 Jan 2024 10:{i:02d}:00 GMT</pubDate><description>&lt;p&gt;正文 {n}-{i}&lt;/p&gt;</description></item>"
        for i in range(ITEMS)
    )
    return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>源{n}</title>{items}</channel></rss>'.encode()


def popen_crawl(db, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", "crawl", "--db", str(db), "--allow-private", "-q", *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.fixture()
def slow_server(tmp_path):
    with ScriptedServer() as server:
        for n in range(FEEDS):
            server.route(f"/feed{n}", Route(body=feed_body(n), delay_s=0.25, headers={"ETag": f'"{n}"'}))
        db = tmp_path / "feeds.db"
        feed_list = tmp_path / "feeds.toml"
        feed_list.write_text("".join(f'[[feeds]]\nurl = "{server.url}/feed{n}"\n' for n in range(FEEDS)))
        assert run_feedloom("import", str(feed_list), "--db", str(db)).returncode == 0
        yield server, db


def counts(db):
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        entries = conn.execute("SELECT count(*), count(DISTINCT url) FROM entries").fetchone()
        sightings = conn.execute("SELECT count(*) FROM entry_sightings").fetchone()[0]
        statuses = [r[0] for r in conn.execute("SELECT status FROM crawls ORDER BY id")]
    return entries, sightings, statuses


def test_sigkill_mid_crawl_then_rerun_completes_without_duplicates(slow_server):
    server, db = slow_server
    proc = popen_crawl(db, "-s", "FEEDLOOM_BATCH_SIZE=5", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=2")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(server.hits) < FEEDS // 3:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (partial, _), _, _ = counts(db)
    assert partial < FEEDS * ITEMS, "the crawl was meant to be killed half-way"
    rerun = run_feedloom("crawl", "--db", str(db), "--allow-private", "-q")
    assert rerun.returncode == 0, rerun.stderr
    (total, distinct), sightings, statuses = counts(db)
    assert total == distinct == FEEDS * ITEMS
    assert sightings == FEEDS * ITEMS
    assert statuses == ["interrupted", "finished"]


def test_a_second_crawl_waits_then_exits_clearly(slow_server):
    _, db = slow_server
    first = popen_crawl(db)
    time.sleep(1.0)  # the first holds the lock by now
    second = run_feedloom("crawl", "--db", str(db), "--allow-private", "--wait-lock", "1")
    _out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert second.returncode == 1
    assert "another crawl is running" in second.stderr and "Traceback" not in second.stderr
    (total, distinct), sightings, statuses = counts(db)
    assert total == distinct == sightings == FEEDS * ITEMS and statuses == ["finished"]


def test_scrapy_crawl_respects_the_same_lock(slow_server):
    _, db = slow_server
    first = popen_crawl(db)
    time.sleep(1.0)
    second = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "feeds", "-s", f"FEEDLOOM_DB={db}", "-s", "FEEDLOOM_LOCK_WAIT=1",
         "-s", "FEEDLOOM_ALLOW_PRIVATE=1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    first.communicate(timeout=60)
    assert "another crawl is running" in second.stderr
    *_, statuses = counts(db)
    assert statuses == ["finished"]


@pytest.mark.parametrize(
    ("row", "code"),
    [
        ({"status": "failed", "feeds_due": 3, "feeds_failed": 0}, 1),
        ({"status": "finished", "feeds_due": 3, "feeds_failed": 3}, 1),
        ({"status": "finished", "feeds_due": 3, "feeds_failed": 1}, 0),
    ],
)
def test_the_exit_status_says_when_a_crawl_failed(tmp_path, monkeypatch, row, code):
    from click.testing import CliRunner

    import crawler.cli

    monkeypatch.setattr(crawler.cli, "_crawl", lambda db, **kwargs: row)
    result = CliRunner().invoke(crawler.cli.main, ["crawl", "--db", str(tmp_path / "f.db")])
    assert result.exit_code == code


def test_start_says_when_it_has_handed_over_its_last_feed():
    import asyncio
    from types import SimpleNamespace

    from crawler.signals import feeds_all_requested
    from crawler.spiders.feeds import FeedsSpider

    sent: list[tuple[object, int]] = []

    async def scenario() -> None:
        spider = FeedsSpider(feeds=[{"id": n, "url": f"http://example.com/{n}.xml"} for n in range(3)])
        spider.crawler = SimpleNamespace(
            engine=SimpleNamespace(needs_backout=lambda: False),
            signals=SimpleNamespace(send_catch_log=lambda signal: sent.append((signal, handed))),
        )
        handed = 0
        async for _ in spider.start():
            handed += 1
            assert not sent  # not before the last one
        assert sent == [(feeds_all_requested, 3)]

    asyncio.run(scenario())


def test_start_hands_over_the_next_feed_only_when_the_scheduler_ran_dry():
    """Scrapy queues start requests as fast as they come: 5,000 waiting requests held some 20 MB."""
    import asyncio
    from types import SimpleNamespace

    from scrapy import signals

    from crawler.spiders.feeds import FeedsSpider

    async def scenario() -> list[str]:
        busy = True
        empty = asyncio.Event()
        waited: list[object] = []

        async def wait_for(signal: object) -> None:
            waited.append(signal)
            await empty.wait()
            empty.clear()

        spider = FeedsSpider(feeds=[{"id": n, "url": f"http://example.com/{n}.xml"} for n in range(3)])
        spider.crawler = SimpleNamespace(
            engine=SimpleNamespace(needs_backout=lambda: busy), signals=SimpleNamespace(wait_for=wait_for)
        )
        requests = spider.start()
        seen: list[str] = []
        nxt = asyncio.ensure_future(anext(requests))
        await asyncio.sleep(0.05)
        assert not nxt.done() and waited == [signals.scheduler_empty]  # the downloader is full: nothing handed over
        busy = False
        empty.set()
        seen.append((await nxt).url)
        seen += [(await anext(requests)).url for _ in range(2)]  # room again: the rest without waiting
        assert len(waited) == 1
        return seen

    assert asyncio.run(scenario()) == [f"http://example.com/{n}.xml" for n in range(3)]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_crawl_stopped_by_ctrl_c_or_sigterm_is_recorded_as_interrupted_and_says_so(tmp_path, signum):
    """A stopped crawl did not finish: its row and its summary say so, and the feeds it never
    reached stay due. Scrapy lets the download in flight end (here by its timeout) and starts no other."""
    db = tmp_path / "f.db"
    feeds = ("/a", "/b", "/c")
    with ScriptedServer() as server:
        store = Store.open(db)
        for path in feeds:
            server.route(path, Route(body=b"<rss/>", delay_s=60))
            store.add_feed(server.url + path)
        store.close()
        crawl = subprocess.Popen(
            [sys.executable, "-m", "crawler.cli", "crawl", "--db", str(db), "--allow-private", "--quiet",
             "-s", "CONCURRENT_REQUESTS=1", "-s", "DOWNLOAD_TIMEOUT=3"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not {hit.path for hit in server.hits} & set(feeds):
                time.sleep(0.05)
            os.killpg(crawl.pid, signum)  # as a terminal's Ctrl-C or `systemctl stop`: the whole group
            out, err = crawl.communicate(timeout=60)
        finally:
            if crawl.poll() is None:
                crawl.kill()
        asked = {hit.path for hit in server.hits} & set(feeds)
    assert crawl.returncode == 0, err
    assert "Traceback" not in err
    assert len(asked) == 1  # one in flight when stopped; no other started
    assert "stopped after" in out and "1 of 3 feeds done: 0 fetched, 0 not modified, 1 failed; the rest stay due" in out
    check = Store.open(db)
    assert check.db.execute("SELECT status, feeds_due, feeds_failed FROM crawls").fetchone() == ("interrupted", 3, 1)
    never = check.db.execute("SELECT count(*) FROM feeds WHERE last_status IS NULL").fetchone()[0]
    check.close()
    assert never == 2  # not fetched: still due for the next crawl


def test_a_second_ctrl_c_stops_at_once_and_the_crawl_is_still_recorded_as_interrupted(tmp_path):
    db = tmp_path / "f.db"
    with ScriptedServer() as server:
        server.route("/slow", Route(body=b"<rss/>", delay_s=60))
        store = Store.open(db)
        store.add_feed(server.url + "/slow")
        store.close()
        crawl = subprocess.Popen(
            [sys.executable, "-m", "crawler.cli", "crawl", "--db", str(db), "--allow-private", "--quiet"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and "/slow" not in {hit.path for hit in server.hits}:
                time.sleep(0.05)
            started = time.monotonic()
            os.killpg(crawl.pid, signal.SIGINT)  # waits for the download in flight (30 s at most) ...
            time.sleep(0.5)
            os.killpg(crawl.pid, signal.SIGINT)  # ... unless asked again
            out, err = crawl.communicate(timeout=60)
        finally:
            if crawl.poll() is None:
                crawl.kill()
    assert time.monotonic() - started < 20  # not the download's 30 s timeout
    assert "Traceback" not in err
    assert "stopped at once" in out and "the next crawl fetches the rest" in out
    check = Store.open(db)
    assert check.db.execute("SELECT status, finished_at IS NOT NULL FROM crawls").fetchone() == ("interrupted", 1)
    check.close()


def test_a_crawl_scrapy_closes_early_is_recorded_as_interrupted(tmp_path):
    """CLOSESPIDER_TIMEOUT (or _ITEMCOUNT, ...) closes the spider before its feeds are done: the crawl did
    not finish, and its row and summary must not say it did; the feeds it did not reach stay due."""
    db = tmp_path / "f.db"
    feeds = ("/a", "/b", "/c")
    with ScriptedServer() as server:
        store = Store.open(db)
        for path in feeds:
            server.route(path, Route(body=feed_body(0), delay_s=60))
            store.add_feed(server.url + path)
        store.close()
        # One request at a time: one feed is in flight when the timeout closes the spider (Scrapy
        # lets it end, here by DOWNLOAD_TIMEOUT), and the other two never start.
        result = run_feedloom(
            "crawl", "--db", str(db), "--allow-private", "-s", "CONCURRENT_REQUESTS=1",
            "-s", "CLOSESPIDER_TIMEOUT=2", "-s", "DOWNLOAD_TIMEOUT=4", timeout=60,
        )
        asked = {hit.path for hit in server.hits} & set(feeds)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert len(asked) == 1
    assert "stopped after" in result.stdout
    assert "1 of 3 feeds done: 0 fetched, 0 not modified, 1 failed; the rest stay due" in result.stdout
    check = Store.open(db)
    row = check.db.execute("SELECT status, feeds_due, feeds_failed FROM crawls").fetchone()
    never = check.db.execute("SELECT count(*) FROM feeds WHERE last_status IS NULL").fetchone()[0]
    check.close()
    assert row == ("interrupted", 3, 1)
    assert never == 2  # still due for the next crawl
