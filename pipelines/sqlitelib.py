"""Which SQLite feedloom, sqlite-utils and datasette use: sqlean.py's where it is installed, else Python's.

sqlite-utils and datasette each import `pysqlite3` when they can, and Python's `sqlite3` otherwise. The
`sqlite` extra installs sqlean.py, an API-compatible fork of pysqlite3 with a recent SQLite (3.50)
that keeps temporary files on disk, as Python's does; `choose` hands it to both of them under
pysqlite3's name, before either is imported. The store follows sqlite-utils, so one SQLite writes
and reads the database and one kind of error is caught (see docs/search.md, "Which SQLite").
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from types import ModuleType

ENV = "FEEDLOOM_SQLITE"  # "stdlib": Python's sqlite3 even where sqlean.py is installed
ALIASES = ("pysqlite3", "pysqlite3.dbapi2")


def choose() -> str | None:
    """Make sqlean.py the `pysqlite3` that sqlite-utils and datasette import, where that is wanted and
    still possible; return what stands aliased ("sqlean"), or None when nothing was changed.

    Nothing changes when FEEDLOOM_SQLITE is "stdlib", when sqlite-utils or datasette has already
    chosen (the store then follows sqlite-utils' choice), when pysqlite3 itself is installed (a
    user's choice, which both would pick anyway), or when sqlean.py is not installed. sqlean.py
    loads only when something imports pysqlite3: a worker process, which parses and never stores,
    does without it (its SQLite is a library of 8 MB).
    """
    if any(isinstance(finder, _SqleanAsPysqlite3) for finder in sys.meta_path):
        return "sqlean"  # done already, in this process
    if os.environ.get(ENV, "").strip().lower() == "stdlib":
        return None
    if any(name in sys.modules for name in ("pysqlite3", "sqlite_utils.utils", "datasette.utils.sqlite")):
        return None
    try:
        if importlib.util.find_spec("pysqlite3") is not None or importlib.util.find_spec("sqlean") is None:
            return None
    except (ImportError, ValueError):  # a broken package on the path: leave it to sqlite-utils
        return None
    sys.meta_path.insert(0, _SqleanAsPysqlite3())
    return "sqlean"


class _SqleanAsPysqlite3(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers `import pysqlite3` (and `pysqlite3.dbapi2`) with sqlean.py's modules themselves."""

    def __init__(self) -> None:
        self._own_specs: dict[str, importlib.machinery.ModuleSpec | None] = {}

    def find_spec(self, name: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        return importlib.util.spec_from_loader(name, self) if name in ALIASES else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        import sqlean
        import sqlean.dbapi2

        _disable_extensions()
        module: ModuleType = sqlean if spec.name == ALIASES[0] else sqlean.dbapi2
        self._own_specs[spec.name] = module.__spec__
        # The module itself, not a copy; its own name stays (import keeps a __name__ it finds).
        return module

    def exec_module(self, module: ModuleType) -> None:
        # sqlean ran when it was imported. Import gave it the alias's spec: give it back its own.
        own = self._own_specs.pop(module.__spec__.name if module.__spec__ else "", None)
        if own is not None:
            module.__spec__ = own


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
