"""Which SQLite writes the database: the module sqlite-utils uses, which is pysqlite3 where a user
installed it (datasette's documentation suggests it for a newer SQLite), else Python's sqlite3.

The store must use the same module as sqlite-utils, for its connection and for the errors it catches.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
import sqlite_utils.utils

from pipelines.store import Store, StoreError
from tests.conftest import run_feedloom


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


def test_version_names_the_sqlite_in_use() -> None:
    sqlite = sqlite_utils.utils.sqlite3
    through = "pysqlite3" if sqlite.__name__.startswith("pysqlite3") else "Python's sqlite3 module"
    result = run_feedloom("--version")
    assert result.returncode == 0, result.stderr
    ours = importlib.metadata.version("feedloom")
    assert result.stdout.splitlines() == [f"feedloom, version {ours}", f"SQLite {sqlite.sqlite_version}, through {through}"]

