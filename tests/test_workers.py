"""Parsing and normalizing in worker processes: the same entries as the pipelines make, and crashes contained."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from scrapy.utils.project import get_project_settings

from bench.threads import children
from crawler.items import FeedFetch
from crawler.outcome import Response, decide_feed_response
from crawler.pages import feed_side_hash
from crawler.recipes import Recipe
from crawler.spiders.feeds import batches_allowed
from crawler.testserver import FixtureServer
from crawler.workers import (
    AUTO_MIN_FEEDS,
    FeedJob,
    ParsePool,
    WorkerCrashed,
    auto_workers,
    work_feed,
)
from pipelines.stages import (
    DedupePipeline,
    HtmlPipeline,
    MetadataPipeline,
    normalize_entry,
)
from pipelines.store import StorePipeline
from tests.conftest import DEMO_SITE, run_feedloom

NOW = "2026-11-20T08:00:00Z"
FEED = {"id": 3, "url": "http://columns.test/feed"}
LONG_BODY = "".join(f"<p>第{i}段：复盘一次灰度发布，记录指标、回滚条件和沟通节奏。</p>" for i in range(40))
RSS = f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>专栏</title><link>http://columns.test/</link>
<item><title>灰度发布复盘</title><link>http://columns.test/a?utm_source=rss</link>
<pubDate>Thu, 19 Nov 2026 09:30:00 +0800</pubDate><description><![CDATA[{LONG_BODY}]]></description></item>
<item><title>只有摘要</title><link>http://columns.test/b</link><description>短短一句摘要……</description></item>
<item><title>站点配方</title><link>http://recipe.test/c</link><description><![CDATA[{LONG_BODY}]]></description></item>
</channel></rss>""".encode()
RECIPE = Recipe(name="recipe", hosts=("recipe.test",), content=("article",), full_content=True)


def job(**changes) -> FeedJob:
    fields = {
        "feed": FEED,
        "response": Response(FEED["url"], 200, {"content-type": "application/rss+xml"}, RSS),
        "fetched_at": NOW,
        "recipes": (RECIPE,),
    }
    return FeedJob(**{**fields, **changes})


def test_a_full_entry_is_normalized_exactly_as_the_pipelines_would():
    routed, fetch = work_feed(job())
    assert isinstance(fetch, FeedFetch) and fetch.entries_seen == 3
    first = routed[0]
    assert first.page_reason is None and first.item.normalized
    assert first.item.feed_hash == feed_side_hash(first.item.raw)
    # The pipelines, run as Scrapy runs them, on the entry the feed gave
    *items, _ = decide_feed_response(FEED, job().response, fetched_at=NOW)
    item = items[0]
    for stage in (MetadataPipeline(), HtmlPipeline(), DedupePipeline()):
        item = stage.process_item(item)
    assert first.item.entry == item.entry == normalize_entry(item.raw, item.context)
    assert first.item.entry.url == "http://columns.test/a"


@pytest.mark.parametrize("index, reason", [(1, "the feed carries only a summary"), (2, "the recipe recipe asks for the page")])
def test_an_entry_waiting_for_its_page_comes_back_unnormalized(index, reason):
    routed, _ = work_feed(job())
    assert routed[index].page_reason == reason
    assert routed[index].item.entry is None and not routed[index].item.normalized


def test_each_entry_is_normalized_once_and_routing_reads_its_cleaned_text(monkeypatch):
    from crawler.parsers import article
    from pipelines import stages

    normalized, parsed = [], []
    real_normalize, real_visible = stages.normalize_entry, article.visible_text
    monkeypatch.setattr(stages, "normalize_entry", lambda raw, *a: normalized.append(raw.link) or real_normalize(raw, *a))
    monkeypatch.setattr(article, "visible_text", lambda html: parsed.append(html) or real_visible(html))
    routed, _ = work_feed(job())
    # The full entry and the summary were normalized for the summary check, the recipe's entry not
    # at all (its page is wanted whatever it holds); the full entry's body was not parsed again.
    assert normalized == ["http://columns.test/a?utm_source=rss", "http://columns.test/b"]
    assert parsed == ["短短一句摘要……"]
    assert routed[0].item.normalized and routed[0].item.entry.content_text.startswith("第0段")
    assert routed[1].page_reason == "the feed carries only a summary" and routed[1].item.entry is None


def test_for_our_own_batches_a_normalized_entry_comes_back_without_the_feeds_body():
    full, _ = work_feed(job())
    slim, _ = work_feed(job(keep_raw=False))
    assert full[0].item.raw.summary and full[0].item.raw.title == "灰度发布复盘"  # the default keeps it
    raw = slim[0].item.raw
    assert (raw.guid, raw.link, raw.summary, raw.title) == (full[0].item.raw.guid, full[0].item.raw.link, None, None)
    assert slim[0].item.entry == full[0].item.entry and slim[0].item.feed_hash == full[0].item.feed_hash
    assert slim[1].item.raw == full[1].item.raw  # waiting for its page: the page completes the raw entry


def test_an_unchanged_entry_needs_no_page_again():
    first, _ = work_feed(job())
    summary = first[1].item
    again, _ = work_feed(job(known_hashes={summary.raw.link: summary.feed_hash}))
    assert again[1].page_reason is None and again[1].item.normalized


def test_the_stages_pass_over_an_item_a_worker_normalized():
    routed, _ = work_feed(job())
    item = routed[0].item
    for stage in (MetadataPipeline(), HtmlPipeline(), DedupePipeline()):
        assert stage.process_item(item) is item


def test_a_body_with_references_to_forbidden_characters_is_still_normalized():
    body = RSS.replace(b"<![CDATA[<p>", b"<![CDATA[<p>&#x1;&#xfffe;", 1)
    routed, fetch = work_feed(job(response=Response(FEED["url"], 200, {}, body)))
    assert fetch.status == "ok" and routed[0].item.normalized
    assert "\x01" not in routed[0].item.entry.content_html


def test_a_broken_feed_gives_its_error_and_no_entries():
    routed, fetch = work_feed(job(response=Response(FEED["url"], 200, {}, b"<html><body>not a feed</body></html>")))
    assert routed == [] and fetch.status == "error" and "HTML page" in fetch.error


@pytest.mark.parametrize(
    "setting, due, cores, expected",
    [
        ("auto", AUTO_MIN_FEEDS - 1, 8, 0),
        ("auto", AUTO_MIN_FEEDS, 8, 4),
        (None, 500, 4, 3),
        ("auto", 500, 2, 1),  # the crawl process keeps about one core busy itself
        ("auto", 500, 1, 1),
        ("0", 500, 8, 0),
        (3, 1, 2, 3),
        ("2", 1, 1, 2),
    ],
)
def test_auto_workers(monkeypatch, setting, due, cores, expected):
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    assert auto_workers(setting, due) == expected


def test_auto_uses_no_workers_on_a_machine_with_little_memory(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr("crawler.workers._memory_bytes", lambda: 512 * 1024**2)
    assert auto_workers("auto", 500) == 0
    assert auto_workers("2", 500) == 2  # a number is obeyed


def test_a_wrong_workers_setting_is_refused_with_its_name():
    with pytest.raises(ValueError, match="FEEDLOOM_WORKERS must be a number or 'auto'"):
        auto_workers("many", 100)


def test_a_wrong_workers_setting_stops_the_crawl_before_it_starts(tmp_path):
    result = run_feedloom("crawl", "--db", str(tmp_path / "f.db"), "-s", "FEEDLOOM_WORKERS=many")
    assert result.returncode != 0
    assert "FEEDLOOM_WORKERS must be a number" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout


@contextlib.asynccontextmanager
async def ready_pool(workers: int) -> AsyncIterator[ParsePool]:
    """A pool whose worker processes have started and loaded the parsers; closed at the end."""
    pool = ParsePool(workers, start_after=0)
    try:
        pool.start()
        while not pool.ready:
            await asyncio.sleep(0.05)
        yield pool
    finally:
        pool.close()


class _KillsItsWorker:
    """Unpickled in the worker, it ends that process the way a crash in a C library would."""

    def __reduce__(self):
        return (os._exit, (70,))


def test_only_the_feed_that_kills_its_worker_fails_and_the_pool_recovers():
    async def scenario():
        inline = work_feed(job())
        async with ready_pool(2) as pool:
            assert await pool.run(job()) == inline
            deadly = job(feed={**FEED, "poison": _KillsItsWorker()})
            results = await asyncio.gather(pool.run(job()), pool.run(deadly), pool.run(job()), return_exceptions=True)
            assert results[0] == inline and results[2] == inline  # in flight when the pool died: parsed again alone
            assert isinstance(results[1], WorkerCrashed) and "the parser process died" in str(results[1])
            assert await pool.run(job()) == inline  # inline while a fresh pool starts
            while not pool.ready:
                await asyncio.sleep(0.05)
            assert await pool.run(job()) == inline  # the fresh pool

    asyncio.run(scenario())


class _Prints:
    """Unpickled in the worker, it prints to stdout, as a chatty library would."""

    def __reduce__(self):
        return (print, ("a library talking on stdout",))


class _Raises:
    """Unpickled in the worker, it raises, as a bug in work_feed would."""

    def __reduce__(self):
        return (int, ("not a number",))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_workers_are_the_crawls_only_child_processes():
    """No multiprocessing resource tracker (12 MB) beside them: the pool uses plain pipes.

    Other tests in this process may keep a server of their own running (the datasette
    fixture lives for the whole session), so only the children the pool added count.
    """

    async def scenario():
        before = set(children(os.getpid()))
        async with ready_pool(2) as pool:
            assert await pool.run(job()) == work_feed(job())
            assert set(children(os.getpid())) - before == set(pool.pids()) and len(pool.pids()) == 2
        assert set(children(os.getpid())) <= before

    asyncio.run(scenario())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_worker_process_loads_no_asyncio_or_ssl():
    """A worker imports crawler.work, not the pool's module: asyncio with ssl cost it about 3 MB."""

    async def scenario():
        async with ready_pool(1) as pool:
            assert await pool.run(job()) == work_feed(job())  # warmed up and parsing
            (pid,) = pool.pids()
            maps = Path(f"/proc/{pid}/maps").read_text()
            libraries = {Path(line.split()[-1]).name.split(".")[0] for line in maps.splitlines() if ".so" in line}
            assert "etree" in libraries  # lxml's: the check reads the right process
            assert not {"_ssl", "_asyncio", "libssl"} & libraries

    asyncio.run(scenario())


def test_a_worker_that_prints_or_raises_still_answers_every_feed():
    async def scenario():
        async with ready_pool(1) as pool:
            chatty = job(feed={**FEED, "noise": _Prints()})
            assert await pool.run(chatty) == work_feed(job(feed={**FEED, "noise": None}))
            with pytest.raises(ValueError, match="not a number"):
                await pool.run(job(feed={**FEED, "bug": _Raises()}))
            pids = pool.pids()
            assert await pool.run(job()) == work_feed(job())
            assert pool.pids() == pids  # the same worker: an error is not a crash

    asyncio.run(scenario())


def test_a_feed_larger_than_a_pipe_goes_through_a_worker_whole():
    items = "".join(
        f"<item><title>第{i}篇</title><link>http://columns.test/{i}</link><description><![CDATA[{LONG_BODY}]]></description></item>"
        for i in range(1000)
    )
    body = f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>专栏</title>{items}</channel></rss>'.encode()
    assert len(body) > 3 * 1024 * 1024  # three times the pipe, both ways
    big = job(response=Response(FEED["url"], 200, {"content-type": "application/rss+xml"}, body))

    async def scenario():
        async with ready_pool(1) as pool:
            results = await asyncio.gather(pool.run(big), pool.run(job()), pool.run(big))
            expected = work_feed(big)
            assert results == [expected, work_feed(job()), expected]

    asyncio.run(scenario())


@pytest.mark.parametrize("failure", ["cannot_create", "die_on_start"])
def test_when_workers_cannot_run_the_crawl_parses_inline(monkeypatch, failure):
    def broken_command():
        if failure == "cannot_create":
            raise OSError("no processes here")
        return [sys.executable, "-c", "import os; os._exit(3)"]

    monkeypatch.setattr("crawler.workers._worker_command", broken_command)

    async def scenario():
        pool = ParsePool(2, start_after=0)
        try:
            pool.start()
            for _ in range(200):
                if pool.workers == 0 or pool.ready:
                    break
                await asyncio.sleep(0.05)
            assert await pool.run(job()) == work_feed(job())
            assert pool.workers == 0 and not pool.started
        finally:
            pool.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_worker_ignores_ctrl_c_and_sigterm_which_the_crawl_process_handles(signum):
    async def scenario():
        async with ready_pool(1) as pool:
            pids = pool.pids()
            for pid in pids:
                os.kill(pid, signum)
            await asyncio.sleep(0.2)
            assert await pool.run(job()) == work_feed(job())
            # the same processes, alive: not a fresh pool after a crash
            assert pool.pids() == pids and all(_alive(pid) for pid in pids)

    asyncio.run(scenario())


def test_the_pool_starts_only_once_there_is_parsing_to_do():
    async def scenario():
        pool = ParsePool(2, start_after=2)
        try:
            not_modified = job(response=Response(FEED["url"], 304, {}, b""))
            for _ in range(5):
                await pool.run(not_modified)
            assert not pool.started
            first = await pool.run(job())
            assert not pool.started
            second = await pool.run(job())  # parsed inline while the processes start
            assert pool.started and first == second == work_feed(job())
        finally:
            pool.close()

    asyncio.run(scenario())


def _backlogged_pool(monkeypatch, feeds: int):
    """A one-worker pool whose worker holds every job until released: (runs, jobs submitted, release)."""

    async def start():
        pool = ParsePool(1, start_after=1)
        monkeypatch.setattr(ParsePool, "ready", property(lambda self: True))
        monkeypatch.setattr(ParsePool, "start", lambda self: None)  # no processes: _submit stands in for them
        release = asyncio.Event()
        submitted = []

        async def slow_worker(self, job):
            submitted.append(job)
            await release.wait()
            return work_feed(job)

        monkeypatch.setattr(ParsePool, "_submit", slow_worker)
        runs = []
        for _ in range(feeds):
            runs.append(asyncio.ensure_future(pool.run(job())))
            await asyncio.sleep(0)
        return pool, runs, submitted, release

    return start()


def test_with_a_backlog_the_crawl_process_parses_every_fourth_feed_itself(monkeypatch):
    async def scenario():
        pool, runs, submitted, release = await _backlogged_pool(monkeypatch, 8)
        # Feeds 1-3 go to the worker; with two in hand, the 4th and the 8th are parsed here.
        assert len(submitted) == 6 and sum(run.done() for run in runs) == 2
        assert runs[3].done() and runs[7].done()
        release.set()
        assert await asyncio.gather(*runs) == [work_feed(job())] * 8
        assert pool._in_flight == 0

    asyncio.run(scenario())


def test_a_large_feed_always_goes_to_a_worker(monkeypatch):
    monkeypatch.setattr("crawler.workers.STEAL_MAX_BYTES", len(RSS) - 1)

    async def scenario():
        _, runs, submitted, release = await _backlogged_pool(monkeypatch, 4)
        assert len(submitted) == 4 and not any(run.done() for run in runs)  # the 4th was not taken
        release.set()
        await asyncio.gather(*runs)

    asyncio.run(scenario())


class RecordingPipeline:
    """A user's own pipeline: writes the type of every item it receives to $RECORD_ITEMS."""

    def process_item(self, item, spider=None):
        with open(os.environ["RECORD_ITEMS"], "a", encoding="utf-8") as out:
            out.write(type(item).__name__ + "\n")
        return item


OWN = {
    "pipelines.stages.MetadataPipeline": 100,
    "pipelines.stages.HtmlPipeline": 200,
    "pipelines.stages.DedupePipeline": 300,
    "pipelines.store.StorePipeline": 400,
}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, True),
        ({"ITEM_PIPELINES": {**OWN, "tests.test_workers.RecordingPipeline": 350}}, False),
        ({"ITEM_PIPELINES": {**OWN, "tests.test_workers.RecordingPipeline": None}}, True),
        ({"ITEM_PIPELINES": {**OWN, "pipelines.stages.HtmlPipeline": None}}, False),
        ({"ITEM_PIPELINES": {**{k: v for k, v in OWN.items() if "Store" not in k}, StorePipeline: 400}}, True),
        ({"FEEDS": {"out.jsonl": {"format": "jsonlines"}}}, False),
        ({"FEED_URI": "out.jsonl"}, False),
        ({"CLOSESPIDER_ITEMCOUNT": 100}, False),
        ({"SPIDER_MIDDLEWARES": {"tests.test_workers.RecordingPipeline": 50}}, False),
        ({"EXTENSIONS": {"crawler.progress.Progress": 500, "tests.test_workers.RecordingPipeline": 600}}, False),
        ({"EXTENSIONS": {"crawler.progress.Progress": None}}, True),
    ],
)
def test_entries_travel_in_batches_only_through_our_own_pipelines(changes, expected):
    settings = get_project_settings().copy()
    for name, value in changes.items():
        settings.set(name, value, priority="cmdline")
    assert batches_allowed(settings) is expected


def test_a_users_pipeline_gets_one_item_per_entry(tmp_path):
    record = tmp_path / "items.txt"
    pipelines = json.dumps({**OWN, "tests.test_workers.RecordingPipeline": 450})
    db = tmp_path / "f.db"
    with FixtureServer(DEMO_SITE) as server:
        assert run_feedloom("import", str(DEMO_SITE / "feeds.toml"), "--db", str(db)).returncode == 0
        result = run_feedloom(
            "crawl", "--db", str(db), "--allow-private", "--proxy", server.url, "-s", f"ITEM_PIPELINES={pipelines}",
            env={"RECORD_ITEMS": str(record)},
        )
    assert result.returncode == 0, result.stderr
    seen = record.read_text("utf-8").split()
    assert set(seen) == {"EntryItem", "FeedFetch"}
    assert seen.count("EntryItem") == 16  # 15 entries, one of them through two feeds
    assert len(_entries(db)) == 15


def _entries(db):
    with sqlite3.connect(db) as conn:
        return sorted(
            conn.execute(
                "SELECT id, url, title, author, published_at, summary, content_html, content_text, cover_image,"
                " language, word_count, content_hash FROM entries"
            )
        )


def test_a_crawl_with_workers_stores_what_one_without_them_stores(tmp_path):
    """The demo site has full entries, summaries completed from their pages, a duplicate and a broken feed."""
    stored = {}
    with FixtureServer(DEMO_SITE) as server:
        for workers in ("0", "2"):
            db = tmp_path / f"w{workers}.db"
            assert run_feedloom("import", str(DEMO_SITE / "feeds.toml"), "--db", str(db)).returncode == 0
            result = run_feedloom(
                "crawl", "--db", str(db), "--allow-private", "--proxy", server.url, "-s", f"FEEDLOOM_WORKERS={workers}"
            )
            assert result.returncode == 0, result.stderr
            assert "entries: 15 new, 0 updated, 1 merged as duplicates" in result.stdout
            stored[workers] = _entries(db)
    assert len(stored["0"]) == 15
    assert stored["2"] == stored["0"]



def test_workers_end_when_the_crawl_process_is_killed(tmp_path):
    """A cron timeout may SIGKILL a crawl: its workers must not live on, each holding 45 MB."""
    script = tmp_path / "crawl.py"
    script.write_text(
        "import asyncio, os, signal, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})\n"
        "from crawler.workers import ParsePool\n"
        "async def main():\n"
        "    pool = ParsePool(2, start_after=0)\n"
        "    pool.start()\n"
        "    while not pool.ready:\n"
        "        await asyncio.sleep(0.05)\n"
        "    print(' '.join(str(pid) for pid in pool.pids()), flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "if __name__ == '__main__':\n"
        "    asyncio.run(main())\n"
    )
    result = subprocess.run([sys.executable, str(script)], check=False, capture_output=True, text=True, timeout=60)
    pids = [int(p) for p in result.stdout.split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return "State:\tZ" not in status.read()
    except FileNotFoundError:
        return False


def test_malloc_arenas_are_capped_on_glibc_and_left_alone_for_0():
    from crawler.workers import limit_malloc_arenas

    assert limit_malloc_arenas(0) is False
    glibc = sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION") is not None
    assert limit_malloc_arenas(2) is glibc


def test_evolve_gives_what_dataclasses_replace_gives_for_every_record():
    import dataclasses

    import crawler.items as records
    from crawler.items import evolve

    classes = [c for c in vars(records).values() if isinstance(c, type) and dataclasses.is_dataclass(c)]
    assert len(classes) >= 7
    for cls in classes:
        # What evolve relies on: nothing runs in __init__ but setting each field.
        assert not hasattr(cls, "__post_init__") and all(f.init for f in dataclasses.fields(cls)), cls
    (item,) = [routed.item for routed in work_feed(job())[0][:1]]
    assert item.entry is not None
    for record, changes in [
        (item, {"feed_hash": "abc", "normalized": True}),
        (item.entry, {"title": "新标题", "word_count": 7, "categories": ("产品",)}),
        (item.raw, {"link": "http://columns.test/x"}),
    ]:
        same = evolve(record, **changes)
        assert same == dataclasses.replace(record, **changes) and type(same) is type(record)
        assert hash(same) == hash(dataclasses.replace(record, **changes))
        assert record != same  # the original is untouched
    with pytest.raises(TypeError, match="no field 'nope'"):
        evolve(item, nope=1)


@pytest.mark.parametrize(
    ("validators", "expected"),
    [
        ([{}, {}, {}], True),  # a first crawl: nothing to answer "not modified" to
        ([{"etag": '"a"'}, {"last_modified": "Thu, 19 Nov 2026 09:30:00 GMT"}, {}], False),
        ([{"etag": '"a"'}, {}, {}], True),  # servers that send no validators answer 200 every time
        ([], False),
    ],
)
def test_workers_start_before_scrapy_when_most_feeds_will_answer_with_a_body(validators, expected):
    from crawler.workers import will_parse

    feeds = [{"id": n, "url": f"http://columns.test/{n}", "etag": None, "last_modified": None, **v} for n, v in enumerate(validators)]
    assert will_parse(feeds) is expected
