"""feedloom item pipelines and the modules beside the store: metadata -> html -> dedupe -> store."""

from pipelines.sqlitelib import choose as _choose_sqlite

_choose_sqlite()  # before anything imports sqlite-utils or datasette, which pick their SQLite once
