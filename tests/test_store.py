"""The store: dedup by primary key, sightings, revisions, tombstones, feed status and schedule."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from sqlite_utils.utils import sqlite3  # the module the store uses: its errors are the ones to raise and catch

from crawler.items import Entry, EntryItem, FeedContext, FeedFetch, RawEntry
from pipelines.dedupe import identify
from pipelines.store import CrawlCounts, Store

NOW = "2024-05-01T00:00:00Z"


def make_entry(url="https://e.com/a", title="标题", body="<p>正文</p>", **kw) -> Entry:
    base = Entry(
        id="", url=url, guid=kw.pop("guid", url), title=title, author="作者", author_email=None, author_bio=None,
        published_at="2024-04-30T10:00:00Z", updated_at=None, published_raw=None, categories=("产品",),
        summary="正文", content_html=body, content_text="正文", cover_image=None, language="zh",
        word_count=2, reading_minutes=1, content_hash="", identity="", feed_guid=kw.pop("feed_guid", url), feed_link=url,
    )
    return identify(replace(base, **kw))


def item(entry: Entry, feed_id: int, at: str = NOW) -> EntryItem:
    ctx = FeedContext(feed_id=feed_id, feed_url=f"https://feed{feed_id}.com/", fetched_at=at)
    return EntryItem(raw=RawEntry(), context=ctx, entry=entry)


@pytest.fixture()
def store(tmp_path):
    s = Store.open(tmp_path / "t.db")
    s.add_feed("https://feed1.com/")
    s.add_feed("https://feed2.com/")
    yield s
    s.close()


def count(store, table):
    return store.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_new_then_unchanged_adds_nothing(store):
    counts = CrawlCounts()
    store.write_batch([item(make_entry(), 1)], counts)
    store.write_batch([item(make_entry(), 1, "2024-05-02T00:00:00Z")], counts)
    assert (counts.entries_new, counts.entries_unchanged, counts.entries_updated) == (1, 1, 0)
    assert count(store, "entries") == 1 and count(store, "entry_sightings") == 1
    assert count(store, "entry_revisions") == 0


def test_same_article_in_two_feeds_is_one_entry_with_two_sightings(store):
    counts = CrawlCounts()
    store.write_batch([item(make_entry(), 1), item(make_entry(), 2)], counts)
    assert count(store, "entries") == 1 and count(store, "entry_sightings") == 2
    assert counts.entries_merged == 1
    reason = store.db.execute("SELECT merge_reason FROM entry_sightings WHERE feed_id = 2").fetchone()[0]
    assert "same canonical URL" in reason and "https://e.com/a" in reason


def test_changed_content_keeps_a_revision(store):
    counts = CrawlCounts()
    store.write_batch([item(make_entry(), 1)], counts)
    store.write_batch([item(make_entry(body="<p>改过的正文</p>", title="新标题"), 1, "2024-05-03T00:00:00Z")], counts)
    assert counts.entries_updated == 1
    row = store.db.execute("SELECT title, revision_count, last_changed_at FROM entries").fetchone()
    assert row == ("新标题", 1, "2024-05-03T00:00:00Z")
    rev = store.db.execute("SELECT title, content_html FROM entry_revisions").fetchone()
    assert rev == ("标题", "<p>正文</p>")


def test_a_newer_copy_from_another_feed_updates_and_never_flip_flops(store):
    counts = CrawlCounts()
    store.write_batch([item(make_entry(), 1), item(make_entry(title="更新后的标题"), 2)], counts)
    for _ in range(3):
        store.write_batch([item(make_entry(), 1), item(make_entry(title="更新后的标题"), 2)], counts)
    assert store.db.execute("SELECT title, revision_count FROM entries").fetchone() == ("更新后的标题", 1)
    assert count(store, "entry_revisions") == 1 and count(store, "entries") == 1


def test_another_feeds_summary_does_not_replace_the_full_text(store):
    counts = CrawlCounts()
    full = make_entry(body="<p>" + "长" * 400 + "</p>")
    full = identify(replace(full, content_text="长" * 400))
    store.write_batch([item(full, 1), item(make_entry(body="<p>摘要</p>"), 2)], counts)
    assert store.db.execute("SELECT length(content_text), revision_count FROM entries").fetchone() == (400, 0)


def test_guid_kept_but_link_changed_is_the_same_entry(store):
    counts = CrawlCounts()
    store.write_batch([item(make_entry(feed_guid="g-1"), 1)], counts)
    store.write_batch([item(make_entry(url="https://e.com/a-renamed", feed_guid="g-1"), 1)], counts)
    assert count(store, "entries") == 1


def test_tombstoned_entries_do_not_come_back(store):
    entry = make_entry()
    store.db.execute("INSERT INTO tombstones (entry_id, deleted_at, reason) VALUES (?, ?, ?)", [entry.id, NOW, "test"])
    counts = CrawlCounts()
    store.write_batch([item(entry, 1)], counts)
    assert count(store, "entries") == 0 and counts.entries_skipped_deleted == 1


def test_a_failing_batch_writes_nothing(store):
    good = item(make_entry(), 1)
    bad = EntryItem(raw=RawEntry(), context=good.context, entry=None)
    with pytest.raises(AssertionError):
        store.write_batch([good, bad], CrawlCounts())
    assert count(store, "entries") == 0


def fetch(**kw):
    base = {"feed_id": 1, "url": "https://feed1.com/", "status": "ok", "http_status": 200, "fetched_at": NOW}
    base.update(kw)
    return FeedFetch(**base)


def feed_row(store, feed_id=1):
    return dict(next(store.db.query("SELECT * FROM feeds WHERE id = ?", [feed_id])))


def test_fetch_ok_records_validators_and_schedule(store):
    counts = CrawlCounts()
    store.write_batch([fetch(etag='"x"', last_modified="Wed, 01 May 2024 00:00:00 GMT", max_age_s=7200)], counts)
    row = feed_row(store)
    assert row["etag"] == '"x"' and row["last_status"] == "ok" and row["consecutive_failures"] == 0
    assert row["next_check_at"] >= "2024-05-01T02:00:00Z"
    assert count(store, "feed_fetches") == 1 and counts.feeds_fetched == 1


def test_failures_back_off_and_are_recorded(store):
    counts = CrawlCounts()
    store.write_batch([fetch(status="error", http_status=500, error="HTTP 500")], counts)
    first = feed_row(store)
    store.write_batch([fetch(status="error", http_status=500, error="HTTP 500")], counts)
    second = feed_row(store)
    assert second["consecutive_failures"] == 2 and second["last_error"] == "HTTP 500"
    assert second["check_interval_s"] > first["check_interval_s"]
    assert counts.errors[0] == {"feed": "https://feed1.com/", "error": "HTTP 500"}


def test_gone_deactivates_and_redirect_moves(store):
    store.write_batch([fetch(status="error", http_status=410, error="410 Gone", gone=True)], CrawlCounts())
    assert feed_row(store)["active"] == 0
    store.write_batch([fetch(feed_id=2, url="https://feed2.com/", new_url="https://feed2.com/new")], CrawlCounts())
    row = feed_row(store, 2)
    assert row["url"] == "https://feed2.com/new" and row["moved_from"] == "https://feed2.com/"


def test_add_feed_twice_merges(store):
    feed_id, created = store.add_feed("https://feed1.com/", name="一", categories=["a"])
    assert (feed_id, created) == (1, False)
    store.add_feed("https://feed1.com/", categories=["b", "a"])
    assert feed_row(store)["categories"] == '["a", "b"]'


def test_one_bad_item_loses_only_itself(store):
    counts = CrawlCounts()
    good = item(make_entry(), 1)
    other = item(make_entry(url="https://e.com/b"), 2)
    bad = EntryItem(raw=RawEntry(link="https://e.com/bad"), context=good.context, entry=make_entry(url="https://e.com/bad", title="\ud800"))
    store.write_batch_or_items([good, bad, other, fetch()], counts)
    assert count(store, "entries") == 2 and counts.entries_new == 2
    assert feed_row(store)["last_status"] == "ok"
    (error,) = counts.errors
    assert "https://e.com/bad" in error["error"] and "could not be stored" in error["error"]


def test_two_feeds_views_in_one_crawl_are_one_entry_without_a_revision(store):
    counts = CrawlCounts()
    crawl = store.start_crawl(2)
    store.write_batch([item(make_entry(), 1), item(make_entry(title="另一个视角"), 2)], counts, crawl)
    assert (counts.entries_new, counts.entries_merged, counts.entries_updated) == (1, 1, 0)
    assert store.db.execute("SELECT title, revision_count FROM entries").fetchone() == ("标题", 0)


def test_a_crawls_new_entries_are_noted_in_a_file_beside_the_database_not_in_memory(tmp_path):
    """A TEMP table grew with the crawl where SQLite keeps temporary tables in memory (pysqlite3's): 9 MB
    at 167,000 entries. The file is removed at close, and one a killed crawl left is replaced."""
    path = tmp_path / "t.db"
    scratch = tmp_path / "t.db-crawl"
    scratch.write_bytes(b"what a killed crawl left")
    store = Store.open(path)
    store.add_feed("https://feed1.com/")
    store.add_feed("https://feed2.com/")
    crawl = store.start_crawl(2)
    counts = CrawlCounts()
    store.write_batch([item(make_entry(), 1)], counts, crawl)
    store.write_batch([item(make_entry(title="另一个视角"), 2)], counts, crawl)  # a later batch, the same crawl
    assert (counts.entries_new, counts.entries_merged, counts.entries_updated) == (1, 1, 0)
    assert scratch.exists()
    assert store.db.execute("SELECT count(*) FROM crawl_scratch.created_now").fetchone() == (1,)
    assert store.db.execute("SELECT count(*) FROM sqlite_temp_master WHERE name = 'created_now'").fetchone() == (0,)
    store.close()
    assert not scratch.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("t.db-crawl")) == []


def _temporary_files() -> set[str]:
    """SQLite's temporary files this process holds open (unlinked, so /proc/self/fd is where they show)."""
    links = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            links.add(os.readlink(fd))
        except OSError:
            continue
    return {link for link in links if "etilqs_" in link}


def _journal_files_open_at_each_commit(store: Store) -> list[list[str]]:
    """For each COMMIT the store runs from now on, the temporary files open just before it that were
    not open already: a statement journal that went to a file stays open until its transaction ends."""
    seen: list[list[str]] = []
    before = _temporary_files()

    def at(statement: str) -> None:
        if statement.strip().upper() == "COMMIT":
            seen.append(sorted(_temporary_files() - before))

    store.db.conn.set_trace_callback(at)
    return seen


def _long_entries(count: int, start: int = 0) -> list[EntryItem]:
    text = "私域流量的复购率取决于用户分层。" * 160  # about 7 KB of UTF-8: each row spills onto overflow pages
    return [
        item(make_entry(url=f"https://e.com/long/{n}", content_text=f"{n} {text}", body=f"<p>{n} {text}</p>"), 1)
        for n in range(start, start + count)
    ]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads the process's open files from /proc (Linux)")
def test_a_batch_that_fills_the_page_cache_journals_its_statements_in_memory_not_in_a_file(tmp_path):
    """Each statement of a transaction keeps an undo record. Once one statement's record passed 64 KiB
    (pages spilled from a full page cache are journaled first), SQLite kept it and every later one in
    a temporary file, two writes per page per row: 147,000 pages over the benchmark's first crawl."""
    store = Store.open(tmp_path / "t.db")
    store.add_feed("https://feed1.com/")
    # A page cache of 10 pages: 300 entries outgrow it as a crawl's batches outgrow SQLite's 2 MB. Each
    # row then loads more index pages than the cache holds, and journals each page it spills first.
    store.db.execute("PRAGMA cache_size=-40")
    store.index_every = 1000  # as in a crawl: this batch only notes its entries for the search index
    commits = _journal_files_open_at_each_commit(store)
    counts = CrawlCounts()
    store.write_batch(_long_entries(300), counts, store.start_crawl(1))
    assert counts.entries_new == 300
    assert commits == [[]]
    # The batch that indexes keeps SQLite's own choice, a file here: the index's one statement can
    # journal megabytes (a merge of its segments), which memory would hold whole.
    store.index_every = 0
    store.write_batch(_long_entries(300, start=300), counts)
    assert counts.entries_new == 600
    assert len(commits) == 2 and commits[1]  # this transaction's statement journal went to a file
    assert store.db.execute("SELECT count(*) FROM entries_fts WHERE entries_fts MATCH '复购率'").fetchone() == (600,)
    assert store.db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    store.close()


def test_a_database_in_memory_keeps_its_crawls_temp_table_across_batches():
    """The statement journal's place is chosen only for a database file: changing it drops TEMP
    tables, where a database in memory keeps the entries its crawl created."""
    from sqlite_utils import Database

    from pipelines.schema import migrate

    db = Database(memory=True)
    migrate(db)
    store = Store(db)
    store.add_feed("https://feed1.com/")
    store.add_feed("https://feed2.com/")
    store.index_every = 1000
    crawl = store.start_crawl(2)
    counts = CrawlCounts()
    store.write_batch([item(make_entry(), 1)], counts, crawl)
    store.write_batch([item(make_entry(title="另一个视角"), 2)], counts, crawl)  # the same article, seen again
    assert (counts.entries_new, counts.entries_merged) == (1, 1)
    assert store.db.execute("SELECT count(*) FROM temp.created_now").fetchone() == (1,)


@pytest.mark.parametrize("page_first", [True, False])
def test_two_copies_in_one_crawl_keep_the_better_one_whatever_the_order(store, page_first):
    """Worker processes and the network decide which feed answers first; the stored entry must not depend on it."""
    crawl = store.start_crawl(2)
    long_body = "<p>" + "完整正文。" * 40 + "</p>"
    page_copy = replace(item(make_entry(body=long_body, content_text="完整正文。" * 40), 1), content_source="page")
    feed_copy = item(make_entry(summary="摘要"), 2)
    counts = CrawlCounts()
    store.write_batch([page_copy, feed_copy] if page_first else [feed_copy, page_copy], counts, crawl)
    row = store.db.execute("SELECT content_html, content_source, revision_count FROM entries").fetchone()
    assert row == (long_body, "page", 0)
    assert count(store, "entry_revisions") == 0 and count(store, "entry_sightings") == 2
    assert (counts.entries_new, counts.entries_merged, counts.entries_updated) == (1, 1, 0)


def test_the_pipeline_writes_its_batches_on_its_own_thread_in_order(tmp_path, monkeypatch):
    import threading

    from pipelines.store import StorePipeline

    db = tmp_path / "p.db"
    Store.open(db).add_feed("https://feed1.com/")
    threads = set()
    original = Store.write_batch_or_items

    def spy(self, batch, counts, crawl_id=None):
        threads.add(threading.current_thread().name)
        return original(self, batch, counts, crawl_id)

    monkeypatch.setattr(Store, "write_batch_or_items", spy)
    pipeline = StorePipeline(str(db), batch_size=3)
    pipeline.open_spider()
    for n in range(10):
        pipeline.process_item(item(make_entry(url=f"https://e.com/{n}"), 1))
    pipeline.process_item(FeedFetch(feed_id=1, url="https://feed1.com/", status="ok", fetched_at=NOW, entries_seen=10))
    pipeline.close_spider()
    assert threads and all(name.startswith("feedloom-store") for name in threads)
    check = Store.open(db)
    assert check.db.execute("SELECT count(*) FROM entries").fetchone()[0] == 10
    assert check.db.execute("SELECT last_status FROM feeds WHERE id = 1").fetchone()[0] == "ok"
    assert check.db.execute("SELECT entries_new, status FROM crawls").fetchone() == (10, "finished")
    check.close()


def test_the_crawls_stats_say_how_long_the_crawl_waited_for_the_store(tmp_path, monkeypatch):
    """A slow writer (a slow disk, say) shows in `feedloom crawl -v`'s stats as the reactor's wait."""
    import time
    from types import SimpleNamespace

    from pipelines.store import StorePipeline

    db = tmp_path / "p.db"
    Store.open(db).add_feed("https://feed1.com/")
    original = Store.write_batch_or_items

    def slow(self, batch, counts, crawl_id=None):
        time.sleep(0.05)  # waiting, as for a disk: wall time, no CPU
        return original(self, batch, counts, crawl_id)

    monkeypatch.setattr(Store, "write_batch_or_items", slow)
    stats: dict[str, object] = {}
    crawler = SimpleNamespace(stats=SimpleNamespace(set_value=stats.__setitem__), crawling=True, spider=None)
    pipeline = StorePipeline(str(db), batch_size=1, crawler=crawler)
    pipeline.open_spider()
    for n in range(6):
        pipeline.process_item(item(make_entry(url=f"https://e.com/{n}"), 1))
    pipeline.close_spider()
    assert stats["feedloom/store_batches"] == 6
    # two batches may wait: from the fourth on, the reactor waits for the writer
    assert 0.05 <= stats["feedloom/store_waited_s"] < stats["feedloom/store_writing_s"]
    assert stats["feedloom/store_writing_s"] >= 6 * 0.05
    assert stats["feedloom/store_writing_cpu_s"] < stats["feedloom/store_writing_s"]


def _index_every_5(db, monkeypatch) -> list[int]:
    """A database with one feed, a crawl's INDEX_EVERY of 5, and the sizes of the index flushes that follow."""
    from pipelines import search, store

    Store.open(db).add_feed("https://feed1.com/")
    monkeypatch.setattr(store, "INDEX_EVERY", 5)
    flushed: list[int] = []
    real_index = search.index_pending
    monkeypatch.setattr(search, "index_pending", lambda database: flushed.append(real_index(database)) or flushed[-1])
    return flushed


def test_a_crawl_indexes_its_entries_a_few_hundred_at_a_time_and_all_of_them_by_the_end(tmp_path, monkeypatch):
    from pipelines.store import StorePipeline

    db = tmp_path / "p.db"
    flushed = _index_every_5(db, monkeypatch)
    pipeline = StorePipeline(str(db), batch_size=2)
    pipeline.open_spider()
    for n in range(12):
        pipeline.process_item(item(make_entry(url=f"https://e.com/{n}", content_text=f"第{n}篇讲私域复购"), 1))
    pipeline.close_spider()
    # batches of 2 entries: indexed at 6 and 12 waiting, none left for the end
    assert flushed == [6, 6]
    check = Store.open(db)
    assert check.db.execute("SELECT count(*) FROM entries_fts WHERE entries_fts MATCH '私域复购'").fetchone()[0] == 12
    assert check.db.execute("SELECT count(*) FROM entries_fts_pending").fetchone()[0] == 0
    check.close()


def test_once_the_last_feed_is_requested_each_batch_is_indexed_as_it_is_written(tmp_path, monkeypatch):
    """The end of a crawl waits for what is left to index: from the last feed on, the writer thread
    indexes as it goes, while the last feeds are parsed."""
    from types import SimpleNamespace

    from scrapy.settings import Settings
    from scrapy.signalmanager import SignalManager

    from crawler.signals import feeds_all_requested
    from pipelines.store import StorePipeline

    db = tmp_path / "p.db"
    flushed = _index_every_5(db, monkeypatch)
    crawler = SimpleNamespace(settings=Settings({"FEEDLOOM_DB": str(db), "FEEDLOOM_BATCH_SIZE": 2}), signals=SignalManager())
    pipeline = StorePipeline.from_crawler(crawler)
    pipeline.crawler = None  # no stats to keep here
    pipeline.open_spider()
    for n in range(4):
        pipeline.process_item(item(make_entry(url=f"https://e.com/{n}", content_text=f"第{n}篇讲私域复购"), 1))
    pipeline._drain(0)
    assert flushed == []  # 4 waiting, fewer than 5
    crawler.signals.send_catch_log(feeds_all_requested)
    for n in range(4, 8):
        pipeline.process_item(item(make_entry(url=f"https://e.com/{n}", content_text=f"第{n}篇讲私域复购"), 1))
    pipeline._drain(0)
    # 4 waiting when the signal came: the next batch indexed them with its own 2, the last its 2
    assert flushed == [6, 2]
    assert pipeline.store.db.execute("SELECT count(*) FROM entries_fts_pending").fetchone()[0] == 0
    pipeline.close_spider()
    assert flushed == [6, 2]  # nothing left for the end


def test_entries_a_killed_crawl_left_unindexed_are_indexed_when_the_next_crawl_opens(tmp_path):
    from pipelines.store import StorePipeline

    db = tmp_path / "p.db"
    killed = Store.open(db)
    killed.add_feed("https://feed1.com/")
    killed.index_every = 100
    killed.write_batch([item(make_entry(url="https://e.com/left", content_text="被中断的抓取留下的文章"), 1)], CrawlCounts())
    assert killed.db.execute("SELECT count(*) FROM entries_fts_pending").fetchone()[0] == 1
    killed.close()  # no catch_up_search: as if the process had been killed
    pipeline = StorePipeline(str(db))
    pipeline.open_spider()
    assert pipeline.store.db.execute("SELECT count(*) FROM entries_fts WHERE entries_fts MATCH '中断的抓取'").fetchone()[0] == 1
    pipeline.close_spider()


def test_a_feeds_entries_arrive_as_one_batch_item_and_are_all_stored(tmp_path):
    from crawler.items import EntryBatch
    from pipelines.store import StorePipeline

    db = tmp_path / "p.db"
    Store.open(db).add_feed("https://feed1.com/")
    pipeline = StorePipeline(str(db), batch_size=4)
    pipeline.open_spider()
    batch = EntryBatch(tuple(item(make_entry(url=f"https://e.com/{n}"), 1) for n in range(7)))
    assert pipeline.process_item(batch) is batch
    pipeline.process_item(FeedFetch(feed_id=1, url="https://feed1.com/", status="ok", fetched_at=NOW, entries_seen=7))
    pipeline.close_spider()
    check = Store.open(db)
    assert check.db.execute("SELECT count(*) FROM entries").fetchone()[0] == 7
    assert check.db.execute("SELECT entries_new, status FROM crawls").fetchone() == (7, "finished")
    check.close()


def test_an_index_that_cannot_catch_up_at_the_end_is_reported_and_the_entries_are_kept(tmp_path, monkeypatch):
    from pipelines.store import StorePipeline

    db = tmp_path / "p.db"
    Store.open(db).add_feed("https://feed1.com/")
    pipeline = StorePipeline(str(db), batch_size=1)
    pipeline.open_spider()
    pipeline.process_item(item(make_entry(url="https://e.com/kept", content_text="索引跟不上时保住的文章"), 1))

    def refused(self):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Store, "catch_up_search", refused)
    pipeline.close_spider()
    monkeypatch.undo()
    check = Store.open(db)
    status, errors = check.db.execute("SELECT status, errors FROM crawls").fetchone()
    assert status == "finished" and "search index could not catch up" in errors and "disk is full" in errors
    assert check.db.execute("SELECT count(*) FROM entries").fetchone()[0] == 1
    assert check.db.execute("SELECT count(*) FROM entries_fts_pending").fetchone()[0] == 1
    assert check.catch_up_search() == 1  # what the next crawl does when it opens
    check.close()


def test_a_failing_batch_write_is_reported_not_lost_silently(tmp_path, monkeypatch):
    from pipelines.store import StorePipeline

    db = tmp_path / "p.db"
    Store.open(db).add_feed("https://feed1.com/")

    def broken(self, batch, counts, crawl_id=None):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(Store, "write_batch_or_items", broken)
    pipeline = StorePipeline(str(db), batch_size=1)
    pipeline.open_spider()
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        for n in range(5):
            pipeline.process_item(item(make_entry(url=f"https://e.com/{n}"), 1))
        pipeline.close_spider()


def test_a_batch_refused_at_close_marks_the_crawl_failed_with_the_reason(tmp_path, monkeypatch):
    from pipelines.store import StorePipeline

    db = tmp_path / "p.db"
    Store.open(db).add_feed("https://feed1.com/")
    pipeline = StorePipeline(str(db), batch_size=100)
    pipeline.open_spider()
    pipeline.process_item(item(make_entry(url="https://e.com/1"), 1))

    def broken(self, batch, counts, crawl_id=None):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Store, "write_batch_or_items", broken)
    with pytest.raises(sqlite3.OperationalError):
        pipeline.close_spider()
    with sqlite3.connect(db) as conn:
        status, errors = conn.execute("SELECT status, errors FROM crawls").fetchone()
    assert status == "failed"
    assert "the database refused a batch: OperationalError: database or disk is full" in errors


# -- the search index under batches (new entries are indexed together before the commit) --


def search_ids(store, query):
    from pipelines.search import search_entries

    return {row["id"] for row in search_entries(store.db, query)}


def index_contents(store):
    return store.db.execute("SELECT term, doc, col, offset FROM entries_fts_instance ORDER BY 1, 2, 3, 4").fetchall()


def test_a_batch_leaves_the_index_a_rebuild_would_make(store):
    from pipelines.search import rebuild_search

    counts = CrawlCounts()
    crawl = store.start_crawl(2)
    store.write_batch([item(make_entry(url="https://e.com/old", title="上一批的旧标题"), 1)], counts, crawl)
    changed_later = make_entry(url="https://e.com/twice", title="同一批里改过的新标题", body="<p>第二版</p>")
    store.write_batch(
        [
            item(make_entry(url="https://e.com/new", title="新来的直播电商复盘"), 1),
            item(make_entry(url="https://e.com/twice", title="同一批里的初稿", body="<p>第一版</p>"), 1),
            item(changed_later, 1, "2024-05-02T00:00:00Z"),
            item(make_entry(url="https://e.com/old", title="上一批改过的标题", body="<p>改过</p>"), 1),
            item(make_entry(url="https://e.com/two", title="两个源的同一篇"), 1),
            replace(item(make_entry(url="https://e.com/two", title="两个源的同一篇：全文版", content_text="长" * 50), 2),
                    content_source="page"),
        ],
        counts,
        crawl,
    )
    assert counts.entries_new == 4 and counts.entries_updated == 2
    assert count(store, "entries_fts_pending") == 0
    assert search_ids(store, "直播电商") == {make_entry(url="https://e.com/new").id}
    assert search_ids(store, "改过的新标题") == {changed_later.id} and search_ids(store, "初稿") == set()
    assert search_ids(store, "上一批改过") == {make_entry(url="https://e.com/old").id} and search_ids(store, "旧标题") == set()
    assert search_ids(store, "全文版") == {make_entry(url="https://e.com/two").id}
    store.db.execute("INSERT INTO entries_fts (entries_fts, rank) VALUES ('integrity-check', 1)")
    before = index_contents(store)
    rebuild_search(store.db)
    assert index_contents(store) == before


def test_nothing_is_left_pending_after_a_batch_or_a_failed_one(store):
    good = item(make_entry(title="会回滚的一批"), 1)
    with pytest.raises(AssertionError):
        store.write_batch([good, EntryItem(raw=RawEntry(), context=good.context, entry=None)], CrawlCounts())
    assert count(store, "entries_fts_pending") == 0 and search_ids(store, "会回滚") == set()
    store.write_batch([good], CrawlCounts())
    assert count(store, "entries_fts_pending") == 0 and search_ids(store, "会回滚") == {good.entry.id}
    # Outside a batch the plain triggers index at once again.
    store.db.execute("INSERT INTO entries (id, title) VALUES ('by-hand', '手工补录的一篇')")
    assert search_ids(store, "手工补录") == {"by-hand"}


# -- columnist counts at scale --------------------------------------------------


COLUMNIST_QUERIES = (
    "SELECT count(*) FROM entries WHERE columnist_id = 'c'",
    "SELECT min(published_at) FROM entries WHERE columnist_id = 'c'",
    "SELECT max(published_at) FROM entries WHERE columnist_id = 'c'",
)


@pytest.mark.parametrize("query", COLUMNIST_QUERIES)
def test_a_batch_recounts_its_columnists_from_the_index_alone(store, query):
    plan = " ".join(row[3] for row in store.db.execute(f"EXPLAIN QUERY PLAN {query}").fetchall())
    assert "COVERING INDEX idx_entries_columnist_id_published_at" in plan


def test_the_migration_replaces_the_columnist_index_of_an_older_database(tmp_path):
    from pipelines.schema import migrate

    path = tmp_path / "old.db"
    Store.open(path).close()
    with sqlite3.connect(path) as conn:  # as migration 003 left it
        conn.execute("DROP INDEX idx_entries_columnist_id_published_at")
        conn.execute("CREATE INDEX idx_entries_columnist_id ON entries (columnist_id)")
        conn.execute("DELETE FROM _migrations WHERE name = '005_columnist_posts_index'")
    store = Store.open(path)
    try:
        assert migrate(store.db) == []  # opening the store applied it already
        names = {row[0] for row in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "idx_entries_columnist_id_published_at" in names and "idx_entries_columnist_id" not in names
    finally:
        store.close()


def test_the_failed_crawl_is_recorded_after_the_batches_still_queued_have_run(tmp_path, monkeypatch):
    import time

    from pipelines.store import StorePipeline

    db = tmp_path / "p.db"
    Store.open(db).add_feed("https://feed1.com/")
    events: list[str] = []
    calls = iter(range(100))

    def writes(self, batch, counts, crawl_id=None):
        first = next(calls) == 0
        time.sleep(0.2)  # the error surfaces at close_spider, with two batches queued behind it
        if first:
            raise sqlite3.OperationalError("disk I/O error")
        events.append("batch written")

    real_finish = Store.finish_crawl

    def finish(self, crawl_id, counts, status="finished"):
        events.append(f"crawl {status}")
        real_finish(self, crawl_id, counts, status)

    monkeypatch.setattr(Store, "write_batch_or_items", writes)
    monkeypatch.setattr(Store, "finish_crawl", finish)
    monkeypatch.setattr(StorePipeline, "MAX_QUEUED", 5)
    pipeline = StorePipeline(str(db), batch_size=1)
    pipeline.open_spider()
    for n in range(3):
        pipeline.process_item(item(make_entry(url=f"https://e.com/{n}"), 1))
    with pytest.raises(sqlite3.OperationalError):
        pipeline.close_spider()
    assert events == ["batch written", "batch written", "crawl failed"]


def test_a_feed_is_answered_when_fetched_not_modified_or_failed():
    counts = CrawlCounts(feeds_due=5, feeds_fetched=2, feeds_not_modified=1, feeds_failed=1, entries_new=9)
    assert counts.feeds_answered == 4  # one feed due was never reached
