"""The sqlite-utils writer: one connection per crawl, batched upserts in one transaction per batch."""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlite_utils import Database

# The SQLite module sqlite-utils and datasette use (sqlean.py with the `sqlite` extra, pysqlite3 where a
# user installed it, else Python's sqlite3; pipelines.sqlitelib). One module for the connection and for
# catching its errors (docs/search.md, "Which SQLite").
from sqlite_utils.utils import sqlite3

from crawler.items import Entry, EntryBatch, EntryItem, FeedFetch
from crawler.signals import feeds_all_requested
from crawler.timeutil import from_iso, iso_after, to_iso, utc_now
from pipelines.dedupe import columnist_id, columnist_site, is_person
from pipelines.schedule import ScheduleSettings, failure_interval, success_interval
from pipelines.schema import migrate
from pipelines.search import INDEX_EVERY, deferred_indexing, flush_pending, may_index

DEFAULT_DB = "data/feeds.db"


class StoreError(Exception):
    """A problem with the database the user can act on (wrong path, not a feedloom database)."""


def default_db_path() -> str:
    return os.environ.get("FEEDLOOM_DB") or DEFAULT_DB


def open_db(path: str | Path, *, create: bool = True) -> Database:
    """Open (and migrate) the database: WAL, a busy timeout, autocommit outside our own transactions."""
    path = Path(path)
    if not create and not path.exists():
        raise StoreError(f"no database at {path}: run `feedloom crawl` or `feedloom add` first")
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(str(path), isolation_level=None, timeout=30, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        db = Database(conn)
        migrate(db)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot use {path} as a feedloom database: {exc}{_old_sqlite_hint(exc)}") from None
    return db


def _old_sqlite_hint(exc: Exception) -> str:
    """What to do when the SQLite in use cannot build the search index (trigram needs 3.34 or later)."""
    if "tokenizer" not in str(exc) and "fts5" not in str(exc):
        return ""
    return (
        f" (the search index needs SQLite 3.34 or later with FTS5; this is SQLite {sqlite3.sqlite_version}:"
        " install feedloom's `sqlite` extra, pip install -e '.[sqlite]', which brings its own)"
    )


@dataclass
class CrawlCounts:
    feeds_due: int = 0
    feeds_fetched: int = 0
    feeds_not_modified: int = 0
    feeds_failed: int = 0
    entries_new: int = 0
    entries_updated: int = 0
    entries_merged: int = 0
    entries_unchanged: int = 0
    entries_skipped_deleted: int = 0
    pages_fetched: int = 0
    pages_failed: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def feeds_answered(self) -> int:
        """Feeds fetched, not modified or failed: every due feed a crawl reaches ends as one of these."""
        return self.feeds_fetched + self.feeds_not_modified + self.feeds_failed


# Fields copied from an Entry into its row; content-bearing ones decide revisions through content_hash.
_ENTRY_FIELDS = (
    "url", "guid", "title", "author", "author_email", "author_bio", "published_at", "updated_at",
    "published_raw", "summary", "content_html", "content_text", "cover_image", "language",
    "word_count", "reading_minutes", "content_hash", "identity", "author_url",
)


def entry_row(entry: Entry) -> dict[str, Any]:
    row = {name: getattr(entry, name) for name in _ENTRY_FIELDS}
    row["id"] = entry.id
    row["categories"] = json.dumps(list(entry.categories), ensure_ascii=False)
    return row


class Store:
    """Reads and writes the feedloom database. One instance, one connection."""

    def __init__(self, db: Database, schedule: ScheduleSettings | None = None) -> None:
        self.db = db
        self.schedule = schedule or ScheduleSettings()
        # 0: each batch indexes its new entries for search before its commit. A crawl sets INDEX_EVERY.
        self.index_every = 0
        # Entries each crawl created: another feed's copy of one of them, seen in the same crawl, is a
        # second view of the same article, not a newer version of it. See _created_table.
        self._created = ""  # the table, once _created_table has made it
        self._scratch: Path | None = None
        self._main_path: str | None = None  # the database's file, "" in memory; see _in_memory
        self._temp_store = ""  # the PRAGMA temp_store this connection was last given (_journal_statements_in)

    @classmethod
    def open(cls, path: str | Path, *, create: bool = True, schedule: ScheduleSettings | None = None) -> Store:
        return cls(open_db(path, create=create), schedule)

    def close(self) -> None:
        try:
            self.db.conn.close()
        finally:
            if self._scratch is not None:
                _remove_database_file(self._scratch)

    def _created_table(self) -> str:
        """The table of the entries each crawl created, ready; called outside a transaction (SQLite
        refuses ATTACH inside one).

        A table in a database file of its own beside the database (`feeds.db-crawl`), removed when the
        store closes; a killed crawl's is replaced by the next crawl's, which holds the crawl lock. Not
        a Python set (170,000 ids held ~20 MB for a 5,000-feed crawl), nor a TEMP table, which a SQLite
        built to keep temporary tables in memory (pysqlite3's) holds whole: 9 MB at 167,000 entries. A
        file's pages stay in its page cache. A database in memory (tests) keeps a TEMP table.
        """
        if self._created:
            return self._created
        if not self._in_memory():
            self._scratch = Path(f"{self._main_path}-crawl")
            _remove_database_file(self._scratch)
            self.db.execute("ATTACH DATABASE ? AS crawl_scratch", [str(self._scratch)])
            self.db.execute("PRAGMA crawl_scratch.journal_mode=MEMORY")
            self.db.execute("PRAGMA crawl_scratch.synchronous=OFF")
            # A page cache of its own, like every attached database: SQLite's default 2 MB filled up on
            # a 5,000-feed crawl, for lookups of one id per entry that the file's pages answer as well.
            self.db.execute("PRAGMA crawl_scratch.cache_size=-512")  # negative: KiB
            table = "crawl_scratch.created_now"
        else:
            table = "temp.created_now"
        self.db.execute(_CREATED_SQL[table][0])
        self._created = table
        return table

    # -- feeds ---------------------------------------------------------------

    def add_feed(
        self,
        url: str,
        *,
        name: str | None = None,
        categories: Sequence[str] = (),
        timezone: str | None = None,
        full_content: bool | None = None,
    ) -> tuple[int, bool]:
        """Subscribe to a feed; returns (id, created). Adding it again merges name and categories."""
        now = to_iso(utc_now())
        flag = None if full_content is None else int(full_content)
        row = self.db.execute("SELECT id, name, categories FROM feeds WHERE url = ?", [url]).fetchone()
        if row is not None:
            feed_id, old_name, old_categories = row
            merged = list(json.loads(old_categories or "[]"))
            for category in categories:
                if category not in merged:
                    merged.append(category)
            self.db.execute(
                "UPDATE feeds SET name = ?, categories = ?, timezone = coalesce(?, timezone),"
                " full_content = coalesce(?, full_content) WHERE id = ?",
                [name or old_name, json.dumps(merged, ensure_ascii=False), timezone, flag, feed_id],
            )
            return feed_id, False
        cursor = self.db.execute(
            "INSERT INTO feeds (url, name, categories, timezone, full_content, added_at, next_check_at, active,"
            " consecutive_failures) VALUES (?, ?, ?, ?, ?, ?, ?, 1, 0)",
            [url, name, json.dumps(list(categories), ensure_ascii=False), timezone, flag, now, now],
        )
        return int(cursor.lastrowid or 0), True

    def feeds(self) -> list[dict[str, Any]]:
        sql = """
            SELECT feeds.*, (SELECT count(*) FROM entry_sightings s WHERE s.feed_id = feeds.id) AS entries
            FROM feeds ORDER BY feeds.id
        """
        return [dict(row) for row in self.db.query(sql)]

    def due_feeds(self, *, now: str | None = None, all_feeds: bool = False, feed_ids: Iterable[int] = ()) -> list[dict[str, Any]]:
        ids = list(feed_ids)
        if ids:
            marks = ",".join("?" for _ in ids)
            return [dict(r) for r in self.db.query(f"SELECT * FROM feeds WHERE id IN ({marks}) ORDER BY id", ids)]
        if all_feeds:
            return [dict(r) for r in self.db.query("SELECT * FROM feeds WHERE active = 1 ORDER BY id")]
        now = now or to_iso(utc_now())
        return [
            dict(r)
            for r in self.db.query(
                "SELECT * FROM feeds WHERE active = 1 AND (next_check_at IS NULL OR next_check_at <= ?)"
                " ORDER BY next_check_at, id",
                [now],
            )
        ]

    def known_feed_hashes(self, feed_ids: Iterable[int]) -> dict[tuple[int, str], str]:
        """(feed id, guid or link) -> the feed-side hash last stored: unchanged entries need no page fetch."""
        ids = list(feed_ids)
        out: dict[tuple[int, str], str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" for _ in chunk)
            for feed_id, guid, link, feed_hash in self.db.execute(
                f"SELECT feed_id, feed_guid, feed_link, feed_hash FROM entry_sightings"
                f" WHERE feed_id IN ({marks}) AND feed_hash IS NOT NULL",
                chunk,
            ):
                out[(feed_id, guid or link or "")] = feed_hash
        return out

    def delete_entry(self, entry_id: str, reason: str = "deleted by the user") -> dict[str, Any] | None:
        """Delete an entry and leave a tombstone, so no later crawl brings it back."""
        row = self.db.execute("SELECT id, url, title FROM entries WHERE id = ?", [entry_id]).fetchone()
        if row is None:
            return None
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute(
                "INSERT OR REPLACE INTO tombstones (entry_id, deleted_at, reason, url, title) VALUES (?, ?, ?, ?, ?)",
                [entry_id, to_iso(utc_now()), reason, row[1], row[2]],
            )
            for table in ("entry_revisions", "entry_sightings"):
                self.db.execute(f"DELETE FROM {table} WHERE entry_id = ?", [entry_id])
            self.db.execute("DELETE FROM entries WHERE id = ?", [entry_id])
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return {"id": row[0], "url": row[1], "title": row[2]}

    def feed_health(self, now: str | None = None) -> list[dict[str, Any]]:
        """Per feed: last success, last error, failures, next check, entries per week over the last 28 days."""
        now = now or to_iso(utc_now())
        since = iso_after(from_iso(now), -28 * 86400)
        sql = """
            SELECT f.id, coalesce(f.name, f.title, f.url) AS name, f.url, f.active, f.deactivated_reason,
                   f.last_status, f.last_success_at, f.last_checked_at, f.last_error, f.consecutive_failures,
                   f.next_check_at,
                   (SELECT count(*) FROM entry_sightings s WHERE s.feed_id = f.id AND s.first_seen_at >= ?) / 4.0
                     AS entries_per_week
            FROM feeds f ORDER BY f.id
        """
        rows = [dict(r) for r in self.db.query(sql, [since])]
        for row in rows:
            row["health"] = health_of(row)
        return rows

    # -- crawls --------------------------------------------------------------

    def start_crawl(self, feeds_due: int) -> int:
        # We hold the crawl lock: a crawl still marked running was killed before it could finish.
        self.db.execute("UPDATE crawls SET status = 'interrupted' WHERE status = 'running'")
        cursor = self.db.execute(
            "INSERT INTO crawls (started_at, status, feeds_due) VALUES (?, 'running', ?)",
            [to_iso(utc_now()), feeds_due],
        )
        return int(cursor.lastrowid or 0)

    def interrupt_crawl(self, crawl_id: int) -> None:
        """Mark a crawl that stopped without recording its end `interrupted` (its counts stay unknown)."""
        self.db.execute(
            "UPDATE crawls SET status = 'interrupted', finished_at = ? WHERE id = ? AND status = 'running'",
            [to_iso(utc_now()), crawl_id],
        )

    def finish_crawl(self, crawl_id: int, counts: CrawlCounts, status: str = "finished") -> None:
        self.db.execute(
            """UPDATE crawls SET finished_at = ?, status = ?, feeds_fetched = ?, feeds_not_modified = ?,
               feeds_failed = ?, entries_new = ?, entries_updated = ?, entries_merged = ?, entries_unchanged = ?,
               pages_fetched = ?, pages_failed = ?, errors = ? WHERE id = ?""",
            [
                to_iso(utc_now()), status, counts.feeds_fetched, counts.feeds_not_modified, counts.feeds_failed,
                counts.entries_new, counts.entries_updated, counts.entries_merged, counts.entries_unchanged,
                counts.pages_fetched, counts.pages_failed, json.dumps(counts.errors, ensure_ascii=False), crawl_id,
            ],
        )

    def crawl(self, crawl_id: int) -> dict[str, Any]:
        return dict(next(self.db.query("SELECT * FROM crawls WHERE id = ?", [crawl_id])))

    # -- writing a batch -----------------------------------------------------

    def write_batch(self, items: Sequence[EntryItem | FeedFetch], counts: CrawlCounts, crawl_id: int | None = None) -> None:
        """Write a batch in one transaction: all of it lands, or none of it.

        New entries are indexed for search together before the commit: a row at a time costs the index
        far more. With `self.index_every` set, they wait (committed) until that many do, and the writer
        owes a `catch_up_search()` at the end (see pipelines.search.deferred_indexing).
        """
        if not items:
            return
        touched: set[str] = set()
        if crawl_id is not None:
            self._created_table()
        incoming = sum(1 for item in items if not isinstance(item, FeedFetch))
        self._journal_statements_in(memory=not may_index(self.db, self.index_every, incoming))
        self.db.execute("BEGIN IMMEDIATE")
        try:
            with deferred_indexing(self.db, self.index_every):
                for item in items:
                    if isinstance(item, FeedFetch):
                        self._write_fetch(item, counts, crawl_id)
                    else:
                        self._write_entry(item, counts, touched, crawl_id)
                self._refresh_columnists(touched)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def _journal_statements_in(self, *, memory: bool) -> None:
        """Keep the statement journal of the transaction about to begin in memory, or where SQLite's build keeps it.

        Within a transaction, SQLite keeps each statement's undo record (the pages it changes that were
        there before it began) in a statement journal: in memory until one statement's record passes
        64 KiB, then in a temporary file, where the records of the transaction's later statements go
        too. A batch outgrows the page cache, and each page a row spills from it is journaled first, so
        every batch's journal went to a file: two `pwrite`s for each page of each row (147,000 pages over
        a first crawl of the benchmark). In memory, each statement's record is dropped when it ends,
        a few pages at most. A batch that may index for search keeps the build's choice (a file here):
        the index's one statement may journal megabytes (docs/benchmarks.md, "Measured in session 23").

        Only for a database file: an in-memory one (tests) keeps its crawl table in TEMP, which a
        change of temp_store would drop. SQLite refuses the change inside a transaction.
        """
        if self._in_memory():
            return
        wanted = _TEMP_STORE_MEMORY if memory else _TEMP_STORE_DEFAULT
        if wanted != self._temp_store:
            self.db.execute(wanted)
            self._temp_store = wanted

    def _in_memory(self) -> bool:
        if self._main_path is None:
            self._main_path = next((row[2] for row in self.db.execute("PRAGMA database_list") if row[1] == "main"), "")
        return not self._main_path

    def write_batch_or_items(self, items: Sequence[EntryItem | FeedFetch], counts: CrawlCounts, crawl_id: int | None = None) -> None:
        """Write a batch; if the database refuses it, write item by item so one bad item loses only itself."""
        before = replace(counts, errors=list(counts.errors))
        try:
            self.write_batch(items, counts, crawl_id)
            return
        except (sqlite3.Error, ValueError, TypeError, AssertionError):
            _restore(counts, before)
        for item in items:
            try:
                self.write_batch([item], counts, crawl_id)
            except (sqlite3.Error, ValueError, TypeError, AssertionError) as exc:
                where = item.url if isinstance(item, FeedFetch) else item.context.feed_url
                what = "its fetch record" if isinstance(item, FeedFetch) else f"entry {item.raw.link or item.raw.guid}"
                counts.errors.append({"feed": where, "error": f"{what} could not be stored: {type(exc).__name__}: {exc}"[:500]})

    def catch_up_search(self) -> int:
        """Index the entries still waiting for the search index (write_batch's index_every, or a crawl
        that was killed before the end); returns how many."""
        self._journal_statements_in(memory=False)
        return flush_pending(self.db)

    def _write_entry(
        self, item: EntryItem, counts: CrawlCounts, touched: set[str] | None = None, crawl_id: int | None = None
    ) -> None:
        entry = item.entry
        assert entry is not None, "the store receives normalized entries only"
        feed_id = item.context.feed_id
        now = item.context.fetched_at or to_iso(utc_now())
        db = self.db
        if item.content_source == "page":
            counts.pages_fetched += 1
        elif item.page_error:
            counts.pages_failed += 1
        if db.execute("SELECT 1 FROM tombstones WHERE entry_id = ?", [entry.id]).fetchone():
            counts.entries_skipped_deleted += 1
            return
        existing = db.execute(
            "SELECT id, content_hash, feed_id, title, content_html, last_changed_at, first_seen_at, content_source,"
            " length(content_text) FROM entries WHERE id = ?",
            [entry.id],
        ).fetchone()
        merge_reason = f"same {entry.identity.split(':', 1)[0]}" if existing else None
        if existing is None and feed_id is not None and entry.feed_guid:
            # The feed kept the guid but changed the link: the same entry.
            row = db.execute(
                "SELECT e.id, e.content_hash, e.feed_id, e.title, e.content_html, e.last_changed_at, e.first_seen_at,"
                " e.content_source, length(e.content_text) FROM entry_sightings s JOIN entries e ON e.id = s.entry_id"
                " WHERE s.feed_id = ? AND s.feed_guid = ?",
                [feed_id, entry.feed_guid],
            ).fetchone()
            if row is not None:
                existing = row
        row = entry_row(entry)
        if item.content_source == "page" or item.page_error:
            row.update(content_source=item.content_source, page_error=item.page_error, page_method=item.page_method)
        elif existing is None:
            row.update(content_source="feed", page_error=None, page_method=None)
        # Otherwise the feed side is unchanged and no page was asked for: what the page told us stands.
        row["columnist_id"] = self._columnist(entry, item, now)
        if row["columnist_id"] and touched is not None:
            touched.add(row["columnist_id"])
        if existing is None:
            row.update(feed_id=feed_id, first_seen_at=now, last_seen_at=now, last_changed_at=now, revision_count=0)
            _insert(db, "entries", row)
            _insert(db, "entry_sightings", _sighting(entry, feed_id, now, None, item.feed_hash))
            counts.entries_new += 1
            if crawl_id is not None:
                db.execute(_CREATED_SQL[self._created][1], [crawl_id, entry.id])
            return
        entry_id, old_hash, owner_feed, old_title, old_html, last_changed, first_seen, old_source, old_len = existing
        sighting = db.execute(
            "SELECT 1 FROM entry_sightings WHERE entry_id = ? AND feed_id IS ?", [entry_id, feed_id]
        ).fetchone()
        if sighting is None:
            reason = _why_merged(entry, existing, merge_reason)
            _insert(db, "entry_sightings", _sighting(entry, feed_id, now, reason, item.feed_hash))
            counts.entries_merged += 1
        else:
            db.execute(
                "UPDATE entry_sightings SET last_seen_at = ?, feed_guid = ?, feed_link = ?, feed_hash = ?"
                " WHERE entry_id = ? AND feed_id IS ?",
                [now, entry.feed_guid, entry.feed_link, item.feed_hash, entry_id, feed_id],
            )
        if old_hash == entry.content_hash:
            if owner_feed == feed_id:
                row.pop("id")
                row.update(last_seen_at=now, feed_id=feed_id)
                _update(db, entry_id, row)  # dates and other fields outside the hash may have moved
            else:
                db.execute("UPDATE entries SET last_seen_at = ? WHERE id = ?", [now, entry_id])
            if sighting is not None:
                counts.entries_unchanged += 1
            return
        same_crawl_view = (
            owner_feed != feed_id
            and crawl_id is not None
            and db.execute(_CREATED_SQL[self._created][2], [crawl_id, entry_id]).fetchone()
            is not None
        )
        if same_crawl_view and _view_rank(item.content_source, len(entry.content_text), entry.content_hash) > _view_rank(
            old_source, old_len, old_hash
        ):
            # Two feeds' copies in one crawl are one first sighting, not a revision; the better copy is
            # kept whichever feed answered first, so the result does not depend on arrival order.
            row.pop("id")
            row.update(last_seen_at=now, feed_id=feed_id, content_source=item.content_source)
            row.update(page_error=item.page_error, page_method=item.page_method)  # not the other copy's
            _update(db, entry_id, row)
            return
        if same_crawl_view or self._keeps_stored_version(entry, item, entry_id, owner_feed, old_source, old_len):
            db.execute("UPDATE entries SET last_seen_at = ? WHERE id = ?", [now, entry_id])
            if sighting is not None:
                counts.entries_unchanged += 1
            return
        row.pop("id")
        row["last_seen_at"] = now
        row["feed_id"] = feed_id
        db.execute(
            "INSERT INTO entry_revisions (entry_id, content_hash, title, content_html, seen_at, replaced_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [entry_id, old_hash, old_title, old_html, last_changed or first_seen, now],
        )
        row["last_changed_at"] = now
        _update(db, entry_id, row, bump_revision=True)
        counts.entries_updated += 1

    def _keeps_stored_version(
        self, entry: Entry, item: EntryItem, entry_id: str, owner_feed: int | None, old_source: str, old_len: int | None
    ) -> bool:
        """True when a differing copy must not replace the stored one.

        A version we already replaced never comes back (two feeds with different copies of a post
        would otherwise swap them on every crawl); an article page's full text is not replaced by a
        feed's summary; another feed's much shorter copy (a summary) does not replace a full text.
        """
        if self.db.execute(
            "SELECT 1 FROM entry_revisions WHERE entry_id = ? AND content_hash = ? LIMIT 1", [entry_id, entry.content_hash]
        ).fetchone():
            return True
        if old_source == "page" and item.content_source == "feed":
            return True
        return owner_feed != item.context.feed_id and len(entry.content_text) < 0.5 * (old_len or 0)

    def _columnist(self, entry: Entry, item: EntryItem, now: str) -> str | None:
        """Find or create the entry's columnist; fill in profile, bio and avatar as pages reveal them."""
        site = columnist_site(entry.url)
        if not site or not entry.author or not is_person(entry.author, item.context.feed_title):
            return None
        key = columnist_id(site, entry.author)
        self.db.execute(
            "INSERT OR IGNORE INTO columnists (id, name, site, first_seen_at, updated_at, post_count)"
            " VALUES (?, ?, ?, ?, ?, 0)",
            [key, entry.author, site, now, now],
        )
        if entry.author_url or entry.author_bio or entry.author_avatar:
            self.db.execute(
                "UPDATE columnists SET profile_url = coalesce(?, profile_url), bio = coalesce(?, bio),"
                " avatar = coalesce(?, avatar), updated_at = ? WHERE id = ?",
                [entry.author_url, entry.author_bio, entry.author_avatar, now, key],
            )
        return key

    def _refresh_columnists(self, ids: set[str]) -> None:
        for key in ids:
            self.db.execute(
                "UPDATE columnists SET post_count = (SELECT count(*) FROM entries WHERE columnist_id = :id),"
                " first_post_at = (SELECT min(published_at) FROM entries WHERE columnist_id = :id),"
                " latest_post_at = (SELECT max(published_at) FROM entries WHERE columnist_id = :id) WHERE id = :id",
                {"id": key},
            )

    def columnists(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.query("SELECT * FROM columnists ORDER BY post_count DESC, name")]

    def _write_fetch(self, fetch: FeedFetch, counts: CrawlCounts, crawl_id: int | None) -> None:
        db = self.db
        feed = db.execute(
            "SELECT consecutive_failures, url, check_interval_s FROM feeds WHERE id = ?", [fetch.feed_id]
        ).fetchone()
        if feed is None:
            return
        failures, old_url, last_interval = feed
        now_dt = from_iso(fetch.fetched_at) if fetch.fetched_at else utc_now()
        now = to_iso(now_dt)
        updates: dict[str, Any] = {
            "last_checked_at": now,
            "last_status": fetch.status,
            "last_http_status": fetch.http_status,
            "last_duration_ms": fetch.duration_ms,
        }
        if fetch.status == "error":
            failures = (failures or 0) + 1
            interval = failure_interval(self.schedule, consecutive_failures=failures, retry_after_s=fetch.retry_after_s)
            updates.update(last_error=fetch.error, consecutive_failures=failures)
            counts.feeds_failed += 1
            counts.errors.append({"feed": old_url, "error": fetch.error or "unknown error"})
        else:
            if fetch.status == "not_modified" and last_interval and not failures:
                # Nothing new: the publishing rate is what it was, only the server's hints may have moved.
                interval = max(last_interval, min(fetch.max_age_s or 0, 7 * 86400))
            else:
                per_day = self._entries_per_day(fetch.feed_id)
                interval = success_interval(self.schedule, entries_per_day=per_day, max_age_s=fetch.max_age_s)
            updates.update(last_error=None, consecutive_failures=0, last_success_at=now)
            if fetch.status == "ok":
                counts.feeds_fetched += 1
                updates.update(etag=fetch.etag, last_modified=fetch.last_modified)
                if fetch.feed_title:
                    updates["title"] = fetch.feed_title
            else:
                counts.feeds_not_modified += 1
        if fetch.gone:
            updates.update(active=0, deactivated_reason=fetch.error or "410 Gone")
        if fetch.new_url and fetch.new_url != old_url:
            taken = db.execute("SELECT id FROM feeds WHERE url = ?", [fetch.new_url]).fetchone()
            if taken is None:
                updates.update(url=fetch.new_url, moved_from=old_url)
        updates["check_interval_s"] = interval
        updates["next_check_at"] = iso_after(now_dt, interval)
        assignments = ", ".join(f"{name} = ?" for name in updates)
        db.execute(f"UPDATE feeds SET {assignments} WHERE id = ?", [*updates.values(), fetch.feed_id])
        _insert(
            db,
            "feed_fetches",
            {
                "crawl_id": crawl_id, "feed_id": fetch.feed_id, "url": fetch.url, "fetched_at": now,
                "status": fetch.status, "http_status": fetch.http_status, "duration_ms": fetch.duration_ms,
                "error": fetch.error, "entries_seen": fetch.entries_seen, "next_check_at": updates["next_check_at"],
            },
        )

    def _entries_per_day(self, feed_id: int) -> float | None:
        row = self.db.execute(
            "SELECT count(*), min(e.published_at), max(e.published_at) FROM entry_sightings s"
            " JOIN entries e ON e.id = s.entry_id WHERE s.feed_id = ? AND e.published_at IS NOT NULL",
            [feed_id],
        ).fetchone()
        count, first, last = row
        if not count or count < 2 or not first or not last:
            return None
        days = max((from_iso(last) - from_iso(first)).total_seconds() / 86400, 1.0)
        return float(count) / days


_TEMP_STORE_MEMORY = "PRAGMA temp_store=MEMORY"
_TEMP_STORE_DEFAULT = "PRAGMA temp_store=DEFAULT"

# For each place the entries a crawl created may be kept (Store._created_table): make it, note one, ask.
_CREATED_SQL = {
    table: (
        f"CREATE TABLE IF NOT EXISTS {table} (crawl_id INTEGER, id TEXT, PRIMARY KEY (crawl_id, id))",
        f"INSERT OR IGNORE INTO {table} (crawl_id, id) VALUES (?, ?)",
        f"SELECT 1 FROM {table} WHERE crawl_id = ? AND id = ?",
    )
    for table in ("crawl_scratch.created_now", "temp.created_now")
}


def _remove_database_file(path: Path) -> None:
    for name in (path, Path(f"{path}-journal")):
        name.unlink(missing_ok=True)


def _restore(counts: CrawlCounts, before: CrawlCounts) -> None:
    for name, value in vars(before).items():
        setattr(counts, name, value)


def health_of(feed: dict[str, Any]) -> str:
    """healthy, failing, deactivated or new: how `feedloom status` groups feeds."""
    if not feed.get("active"):
        return "deactivated"
    if feed.get("consecutive_failures"):
        return "failing"
    if not feed.get("last_checked_at"):
        return "new"
    return "healthy"


def _sighting(entry: Entry, feed_id: int | None, now: str, reason: str | None, feed_hash: str | None) -> dict[str, Any]:
    return {
        "entry_id": entry.id, "feed_id": feed_id, "feed_guid": entry.feed_guid, "feed_link": entry.feed_link,
        "first_seen_at": now, "last_seen_at": now, "merge_reason": reason, "feed_hash": feed_hash,
    }


def _view_rank(source: str | None, text_length: int | None, content_hash: str) -> tuple[bool, int, str]:
    """Which of two copies of an entry seen in one crawl to keep: the article page's, then the longer, then any fixed one."""
    return source == "page", text_length or 0, content_hash


def _why_merged(entry: Entry, existing: Sequence[Any], reason: str | None) -> str:
    if reason is None:
        return f"same guid as an entry this feed already had ({entry.feed_guid})"
    kind, _, value = entry.identity.partition(":")
    first_feed = existing[2]
    if kind == "url":
        return f"same canonical URL as the entry first stored from feed {first_feed}: {value}"
    if kind == "guid":
        return f"same guid as the entry first stored from feed {first_feed}: {value}"
    return f"same title and date as the entry first stored from feed {first_feed}"


def _insert(db: Database, table: str, row: dict[str, Any]) -> None:
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    db.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(row.values()))


def _update(db: Database, entry_id: str, row: dict[str, Any], *, bump_revision: bool = False) -> None:
    assignments = ", ".join(f"{name} = ?" for name in row)
    if bump_revision:
        assignments += ", revision_count = revision_count + 1"
    db.execute(f"UPDATE entries SET {assignments} WHERE id = ?", [*row.values(), entry_id])


@dataclass
class StoreTimes:
    """Where the store's time went in a crawl, for its Scrapy stats (`feedloom crawl -v`).

    `waited_s` is how long the reactor waited for room in the writer thread's queue: the whole crawl
    stands still meanwhile (no response is handled, no feed handed to a worker). Much of it means the
    database is the crawl's bottleneck: a slow disk, or the search index.
    """

    batches: int = 0
    waited_s: float = 0.0  # the reactor, for room in the writer's queue
    writing_s: float = 0.0  # the writer thread, inside its batches (wall time)
    writing_cpu_s: float = 0.0  # the writer thread's CPU time in them

    def stats(self) -> dict[str, float]:
        return {
            "feedloom/store_batches": self.batches,
            "feedloom/store_waited_s": round(self.waited_s, 2),
            "feedloom/store_writing_s": round(self.writing_s, 2),
            "feedloom/store_writing_cpu_s": round(self.writing_cpu_s, 2),
        }


class StorePipeline:
    """Collect items and write them in batches; record the crawl's own statistics."""

    MAX_QUEUED = 2  # batches handed to the writer thread and not written yet

    def __init__(self, db_path: str, batch_size: int = 200, schedule: ScheduleSettings | None = None, crawler: Any = None) -> None:
        self.db_path = db_path
        self.batch_size = batch_size
        self.schedule = schedule
        self.crawler = crawler
        self.store: Store | None = None
        self.crawl_id: int | None = None
        self.counts = CrawlCounts()
        self.pending: list[EntryItem | FeedFetch] = []
        self._writer: ThreadPoolExecutor | None = None
        self._queued: deque[Future[None]] = deque()
        self.times = StoreTimes()

    @classmethod
    def from_crawler(cls, crawler: Any) -> StorePipeline:
        s = crawler.settings
        schedule = ScheduleSettings(
            min_interval_s=s.getint("FEEDLOOM_MIN_INTERVAL"),
            max_interval_s=s.getint("FEEDLOOM_MAX_INTERVAL"),
            default_interval_s=s.getint("FEEDLOOM_DEFAULT_INTERVAL"),
            backoff_base_s=s.getint("FEEDLOOM_BACKOFF_BASE"),
            backoff_cap_s=s.getint("FEEDLOOM_BACKOFF_CAP"),
        )
        pipeline = cls(s.get("FEEDLOOM_DB") or default_db_path(), s.getint("FEEDLOOM_BATCH_SIZE", 200), schedule, crawler)
        crawler.signals.connect(pipeline.feeds_all_requested, signal=feeds_all_requested)
        return pipeline

    def feeds_all_requested(self) -> None:
        """From the last feed on, each batch is indexed for search as it is written (with what still
        waits): the writer thread does it while the last feeds are parsed, and the crawl's end, which
        waits for it, has little left to index."""
        if self.store is not None:
            self.store.index_every = 0

    def open_spider(self, spider: Any = None) -> None:
        self.store = Store.open(self.db_path, schedule=self.schedule)
        self.store.catch_up_search()  # what a killed crawl left unindexed
        self.store.index_every = INDEX_EVERY
        spider = spider or getattr(self.crawler, "spider", None)
        due = len(getattr(spider, "feed_rows", None) or [])
        self.counts.feeds_due = due
        self.crawl_id = self.store.start_crawl(due)
        if self.crawler is not None:
            self.crawler.stats.set_value("feedloom/crawl_id", self.crawl_id)
        # Batches are written by one thread of their own, in order: SQLite (the search index above all)
        # does its work there without holding the GIL, while the reactor goes on fetching and routing.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feedloom-store")

    def process_item(self, item: Any, spider: Any = None) -> Any:
        if isinstance(item, (EntryItem, FeedFetch)):
            self.pending.append(item)
        elif isinstance(item, EntryBatch):
            self.pending.extend(item.items)
        else:
            return item
        if len(self.pending) >= self.batch_size:
            self._flush()
        return item

    def close_spider(self, spider: Any = None) -> None:
        assert self.store is not None and self.crawl_id is not None
        try:
            try:
                self._flush()
                self._drain(0)
            except Exception as exc:
                # Batches queued behind the failed one still run on the writer thread, on the same
                # connection and counts: let them finish before this thread writes the crawl's row.
                self._stop_writer()
                self._catch_up_search()
                self._fail_crawl(exc)
                raise
            self._catch_up_search()  # the last entries, waiting for INDEX_EVERY more
            # Fewer feeds answered than due: Scrapy closed the spider early (CLOSESPIDER_TIMEOUT, ...).
            done = not self._stopped() and self.counts.feeds_answered >= self.counts.feeds_due
            self.store.finish_crawl(self.crawl_id, self.counts, status="finished" if done else "interrupted")
        finally:
            self._stop_writer()
            self.store.close()
            if self.crawler is not None:
                for name, value in self.times.stats().items():
                    self.crawler.stats.set_value(name, value)

    def _stopped(self) -> bool:
        """Whether the crawl was stopped before its end (Ctrl-C, SIGTERM): Scrapy's crawler stops
        `crawling` before it closes the spider then, and keeps it through a crawl that ran out of feeds."""
        return self.crawler is not None and getattr(self.crawler, "crawling", True) is False

    def _catch_up_search(self) -> None:
        """Index the entries still waiting; if the database refuses, say so: they are stored, and the
        next crawl indexes them when it opens."""
        assert self.store is not None
        try:
            self.store.catch_up_search()
        except sqlite3.Error as exc:
            self.counts.errors.append(
                {"feed": self.db_path, "error": f"the search index could not catch up (the next crawl will): {type(exc).__name__}: {exc}"[:500]}
            )

    def _stop_writer(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None

    def _fail_crawl(self, exc: Exception) -> None:
        """Mark the crawl `failed`, with the reason among its errors: the database refused a batch even item by item."""
        assert self.store is not None and self.crawl_id is not None
        self.counts.errors.append({"feed": self.db_path, "error": f"the database refused a batch: {type(exc).__name__}: {exc}"[:500]})
        try:
            self.store.finish_crawl(self.crawl_id, self.counts, status="failed")
        except sqlite3.Error:
            pass  # the database is still refusing: the next crawl marks this one `interrupted`

    def _flush(self) -> None:
        assert self.store is not None
        batch, self.pending = self.pending, []
        if not batch:
            return
        if self._writer is None:  # used without open_spider's thread (tests, tools): write here
            self._write(batch)
            return
        self._queued.append(self._writer.submit(self._write, batch))
        # At most MAX_QUEUED batches wait in memory: past that, the reactor waits for the writer.
        started = time.perf_counter()
        self._drain(self.MAX_QUEUED)
        self.times.waited_s += time.perf_counter() - started

    def _drain(self, keep: int) -> None:
        """Wait until at most `keep` batches are queued; a batch's unexpected error surfaces here."""
        while len(self._queued) > keep or (self._queued and self._queued[0].done()):
            self._queued.popleft().result()

    def _write(self, batch: list[EntryItem | FeedFetch]) -> None:
        assert self.store is not None
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            self.store.write_batch_or_items(batch, self.counts, self.crawl_id)
        finally:
            # Only this thread writes these (the reactor reads them once the writer has stopped).
            self.times.batches += 1
            self.times.writing_s += time.perf_counter() - started
            self.times.writing_cpu_s += time.thread_time() - cpu
        if self.crawler is not None:
            for name in ("entries_new", "entries_updated", "entries_merged", "feeds_failed", "feeds_fetched", "feeds_not_modified"):
                self.crawler.stats.set_value(f"feedloom/{name}", getattr(self.counts, name))
