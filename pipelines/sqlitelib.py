"""Which SQLite feedloom, sqlite-utils and datasette use: sqlean.py's where it is installed, else Python's.

sqlite-utils and datasette each import `pysqlite3` when they can, and Python's `sqlite3` otherwise. The
`sqlite` extra installs sqlean.py, an API-compatible fork of pysqlite3 with a recent SQLite (3.50)
that keeps temporary files on disk, as Python's does; `choose` hands it to both of them under
pysqlite3's name, before either is imported. The store follows sqlite-utils, so one SQLite writes
and reads the database and one kind of error is caught (see docs/search.md, "Which SQLite").
"""

from __future__ import annotations

import importlib.util
import os
import sys

ENV = "FEEDLOOM_SQLITE"  # "stdlib": Python's sqlite3 even where sqlean.py is installed
ALIASES = ("pysqlite3", "pysqlite3.dbapi2")


def choose() -> str | None:
    """Make sqlean.py the `pysqlite3` that sqlite-utils and datasette import, where that is wanted and
    still possible; return what stands aliased ("sqlean"), or None when nothing was changed.

    Nothing changes when FEEDLOOM_SQLITE is "stdlib", when sqlite-utils or datasette has already
    chosen (the store then follows sqlite-utils' choice), when pysqlite3 itself is installed (a
    user's choice, which both would pick anyway), or when sqlean.py is not installed.
    """
    if sys.modules.get("pysqlite3") is sys.modules.get("sqlean") is not None:
        return "sqlean"  # done already, in this process
    if os.environ.get(ENV, "").strip().lower() == "stdlib":
        return None
    if any(name in sys.modules for name in ("pysqlite3", "sqlite_utils.utils", "datasette.utils.sqlite")):
        return None
    try:
        if importlib.util.find_spec("pysqlite3") is not None:
            return None
    except (ImportError, ValueError):  # a broken pysqlite3 on the path: leave it to sqlite-utils
        return None
    try:
        import sqlean
        import sqlean.dbapi2
    except ImportError:  # not installed, or no build for this platform
        return None
    _disable_extensions()
    sys.modules["pysqlite3"] = sqlean
    sys.modules["pysqlite3.dbapi2"] = sqlean.dbapi2
    return "sqlean"


def _disable_extensions() -> None:
    """Keep sqlean.py's bundled extensions off (its own default): datasette runs SQL that anyone who
    can reach it writes, and `fileio` would let that SQL read and write files. Its switches are
    environment variables, read at each connection."""
    for name in [name for name in os.environ if name.startswith("SQLEAN_ENABLE")]:
        del os.environ[name]
    os.environ["SQLEAN_ENABLE"] = "0"


def describe(module: object) -> str:
    """How `feedloom --version` names the module that reached SQLite."""
    name = getattr(module, "__name__", "")
    if name.startswith("sqlean"):
        return "sqlean.py"
    if name.startswith("pysqlite3"):
        return "pysqlite3"
    return "Python's sqlite3 module"
