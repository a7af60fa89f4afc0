"""Which SQLite writes the database: the module sqlite-utils uses. That is sqlean.py where the
`sqlite` extra is installed (pipelines.sqlitelib hands it to sqlite-utils and datasette), pysqlite3
where a user installed that, else Python's sqlite3.

The store must use the same module as sqlite-utils, for its connection and for the errors it catches.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import sqlite3 as stdlib_sqlite3
import subprocess
import sys
import types
from pathlib import Path

import pytest
import sqlite_utils.utils

from pipelines.sqlitelib import describe
from pipelines.store import Store, StoreError
from tests.conftest import ROOT, run_feedloom

HAVE_SQLEAN = importlib.util.find_spec("sqlean") is not None
needs_sqlean = pytest.mark.skipif(
    not HAVE_SQLEAN and os.environ.get("CI") != "true",
    reason="sqlean.py is not installed (the `sqlite` extra, which `make test` installs)",
)

# What a fresh process picks: the modules sqlite-utils and datasette imported, and its SQLite.
_PROBE = """
import json, pipelines, sqlite_utils.utils as u, datasette.utils.sqlite as d
conn = u.sqlite3.connect(":memory:")
try:
    conn.execute("select fileio_read('/dev/null')")
    fileio = True
except u.sqlite3.OperationalError:
    fileio = False
print(json.dumps({"sqlite_utils": u.sqlite3.__name__, "datasette": d.sqlite3.__name__,
                  "version": u.sqlite3.sqlite_version, "fileio": fileio}))
"""


def _python(code: str, env: dict[str, str] | None = None, pythonpath: Path | None = None) -> str:
    """What `python -c code` prints in a fresh process, which picks its SQLite afresh."""
    environ = {**os.environ, **(env or {})}
    if pythonpath is not None:
        environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), environ.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _probe(env: dict[str, str] | None = None, pythonpath: Path | None = None) -> dict[str, object]:
    return json.loads(_python(_PROBE, env, pythonpath))


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


def test_an_sqlite_without_the_trigram_tokenizer_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pipelines.store

    def old_sqlite(db: object) -> None:  # what SQLite before 3.34 answers to tokenize='trigram'
        raise sqlite_utils.utils.sqlite3.OperationalError("no such tokenizer: trigram")

    monkeypatch.setattr(pipelines.store, "migrate", old_sqlite)
    with pytest.raises(StoreError, match=r"no such tokenizer: trigram \(the search index needs SQLite 3\.34 .*'\.\[sqlite\]'"):
        Store.open(tmp_path / "feeds.db")


def test_version_names_the_sqlite_in_use() -> None:
    sqlite = sqlite_utils.utils.sqlite3
    through = describe(sqlite)
    result = run_feedloom("--version")
    assert result.returncode == 0, result.stderr
    ours = importlib.metadata.version("feedloom")
    assert result.stdout.splitlines() == [f"feedloom, version {ours}", f"SQLite {sqlite.sqlite_version}, through {through}"]


@needs_sqlean
def test_sqlean_is_the_sqlite_of_sqlite_utils_and_datasette_where_installed() -> None:
    import sqlean

    assert _probe(env={"FEEDLOOM_SQLITE": ""}) == {
        "sqlite_utils": "sqlean", "datasette": "sqlean", "version": sqlean.sqlite_version, "fileio": False,
    }
    # this test process too, and so the store: pipelines was imported before sqlite-utils
    stdlib_asked = os.environ.get("FEEDLOOM_SQLITE", "").strip().lower() == "stdlib"
    assert sqlite_utils.utils.sqlite3 is (stdlib_sqlite3 if stdlib_asked else sqlean)
    assert describe(sqlean) == "sqlean.py"


@needs_sqlean
def test_sqlean_loads_only_where_something_opens_a_database() -> None:
    # a worker process parses and normalizes, and never stores: it does without the 8 MB library
    code = (
        "import sys, pipelines.stages, crawler.workers, crawler.parsers.feed; print('sqlean' in sys.modules);"
        "import sqlite_utils.utils as u; print('sqlean' in sys.modules, u.sqlite3.__spec__.name)"
    )
    assert _python(code, env={"FEEDLOOM_SQLITE": ""}).split() == ["False", "True", "sqlean"]


@needs_sqlean
def test_sqlean_extensions_stay_off_whatever_the_environment_says() -> None:
    # datasette runs SQL that anyone who reaches it writes: fileio would read and write files
    for env in ({"SQLEAN_ENABLE": "1"}, {"SQLEAN_ENABLE_FILEIO": "1"}):
        probe = _probe(env={"FEEDLOOM_SQLITE": "", **env})
        assert probe["sqlite_utils"] == "sqlean"
        assert probe["fileio"] is False, env


def test_feedloom_sqlite_stdlib_keeps_pythons_sqlite3() -> None:
    assert _probe(env={"FEEDLOOM_SQLITE": "stdlib"}) == {
        "sqlite_utils": "sqlite3", "datasette": "sqlite3", "version": stdlib_sqlite3.sqlite_version, "fileio": False,
    }
    result = run_feedloom("--version", env={"FEEDLOOM_SQLITE": "stdlib"})
    assert result.stdout.splitlines()[1] == f"SQLite {stdlib_sqlite3.sqlite_version}, through Python's sqlite3 module"


def test_a_pysqlite3_the_user_installed_is_left_to_sqlite_utils(tmp_path: Path) -> None:
    fake = tmp_path / "pysqlite3"
    fake.mkdir()
    # stands for pysqlite3-binary: the standard module under pysqlite3's name
    (fake / "__init__.py").write_text("from sqlite3 import *\nfrom sqlite3 import sqlite_version\nfrom . import dbapi2\n")
    (fake / "dbapi2.py").write_text("from sqlite3.dbapi2 import *\n")
    probe = _probe(env={"FEEDLOOM_SQLITE": ""}, pythonpath=tmp_path)
    assert probe["sqlite_utils"] == probe["datasette"] == "pysqlite3"
    assert describe(types.SimpleNamespace(__name__="pysqlite3")) == "pysqlite3"


def test_a_database_one_sqlite_wrote_the_other_reads_and_searches(tmp_path: Path) -> None:
    """A crawl with Python's SQLite, then searches with each; the index checked by each (a datasette or
    sqlite3 shell of another SQLite opens the same file)."""
    db = tmp_path / "feeds.db"
    crawl = run_feedloom("demo", "--db", str(db), env={"FEEDLOOM_SQLITE": "stdlib"})
    assert crawl.returncode == 0, crawl.stderr + crawl.stdout
    found = {}
    for mode in ("stdlib", ""):
        result = run_feedloom("search", "产品经理", "--json", "--db", str(db), env={"FEEDLOOM_SQLITE": mode})
        assert result.returncode == 0, result.stderr
        found[mode] = [hit["id"] for hit in json.loads(result.stdout)]
    assert found["stdlib"] and found["stdlib"] == found[""]
    modules = [stdlib_sqlite3]
    if HAVE_SQLEAN:
        import sqlean

        modules.append(sqlean)
    for module in modules:
        conn = module.connect(db)
        try:
            conn.execute("INSERT INTO entries_fts (entries_fts, rank) VALUES ('integrity-check', 1)")
        finally:
            conn.close()
