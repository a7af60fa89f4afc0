"""Which SQLite writes the database: pysqlite3's where it is installed, else the standard library's.

sqlite-utils and datasette pick pysqlite3 by themselves when it is importable; the store must use the
same module, for its connection and for the errors it catches. A database either one writes must read
with the other, since users open it with whatever SQLite their own tools have.
"""

from __future__ import annotations

import json
import platform
import sqlite3 as stdlib_sqlite3
import sys
from pathlib import Path

import pytest
import sqlite_utils.utils

from pipelines.search import FTS_TABLE
from pipelines.store import Store, StoreError
from tests.conftest import run_feedloom

ON_LINUX_X86_64 = sys.platform == "linux" and platform.machine() == "x86_64"


def test_the_store_connects_with_the_sqlite_module_sqlite_utils_uses(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "feeds.db")
    try:
        assert isinstance(store.db.conn, sqlite_utils.utils.sqlite3.Connection)
    finally:
        store.close()
    # ...and catches that module's errors: a file that is not a database is a StoreError, not a traceback.
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database, " * 512)
    with pytest.raises(StoreError, match="cannot use .* as a feedloom database"):
        Store.open(junk)


@pytest.mark.skipif(not ON_LINUX_X86_64, reason="pysqlite3-binary has wheels for Linux x86_64 only")
def test_on_linux_x86_64_the_newer_sqlite_is_the_one_in_use() -> None:
    sqlite = sqlite_utils.utils.sqlite3
    assert sqlite.__name__ == "pysqlite3", "pyproject.toml installs pysqlite3-binary on Linux x86_64"
    assert sqlite.sqlite_version_info >= (3, 45)
    result = run_feedloom("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["feedloom, version 0.1.0", f"SQLite {sqlite.sqlite_version}, through pysqlite3"]


def test_a_database_a_crawl_wrote_reads_with_the_standard_librarys_sqlite(demo_db: Path) -> None:
    conn = stdlib_sqlite3.connect(f"file:{demo_db}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        titles = [row[0] for row in conn.execute(f"SELECT title FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH '\"私域复购\"'")]
        assert titles == ["私域复购的三个误会：加了微信不等于有了用户  "]  # the index's padded copy of the title
    finally:
        conn.close()
    # FTS5's own check that the index matches the entries it was built from, on a writable copy
    copy = demo_db.parent / "copy-for-integrity-check.db"
    source = stdlib_sqlite3.connect(demo_db)
    target = stdlib_sqlite3.connect(copy)
    try:
        source.backup(target)
        target.execute(f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rank) VALUES ('integrity-check', 1)")
    finally:
        source.close()
        target.close()


def test_without_pysqlite3_the_standard_librarys_sqlite_serves(tmp_path: Path) -> None:
    """Where pysqlite3 is not installed (macOS, ARM), the same crawl and search work on Python's sqlite3."""
    blocker = tmp_path / "blocker"
    (blocker / "pysqlite3").mkdir(parents=True)
    (blocker / "pysqlite3" / "__init__.py").write_text('raise ImportError("not installed here")\n')
    env = {"PYTHONPATH": str(blocker)}
    version = run_feedloom("--version", env=env)
    assert version.returncode == 0, version.stderr
    assert version.stdout.splitlines()[1] == f"SQLite {stdlib_sqlite3.sqlite_version}, through Python's sqlite3 module"
    db = tmp_path / "feeds.db"
    crawl = run_feedloom("demo", "--db", str(db), env=env)
    assert crawl.returncode == 0, crawl.stderr + crawl.stdout
    assert "15 new" in crawl.stdout
    found = run_feedloom("search", "私域", "--json", "--db", str(db), env=env)
    assert found.returncode == 0, found.stderr
    assert [hit["title"] for hit in json.loads(found.stdout)] == ["私域复购的三个误会：加了微信不等于有了用户"]
