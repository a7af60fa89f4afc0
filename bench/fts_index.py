"""What writing the search index costs, away from the crawl: `python -m bench.fts_index [--sqlite stdlib]`.

Copies the entries of a crawled database (default bench/out/work-500-0/feedloom.db, which
`python -m bench.run --feeds 500` leaves) into a fresh database made by `open_db`, INDEX_EVERY
entries per transaction, through `deferred_indexing`: the store's own indexing path, with its FTS5
settings. Prints the CPU time of copying and of indexing, and the process's peak RSS.

`--sqlite stdlib` runs the same in a child process with FEEDLOOM_SQLITE=stdlib and without pysqlite3,
so that sqlite-utils and the store fall back to Python's sqlite3; `--sqlite auto` (the default) uses
what feedloom picks (sqlean.py where the `sqlite` extra is installed, as `make` installs it; pysqlite3
where you installed that). `--rounds N` alternates `auto` and `stdlib` N times.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_SOURCE = Path(__file__).resolve().parent / "out" / "work-500-0" / "feedloom.db"


def measure(source: Path, target: Path) -> dict[str, float | str]:
    # isort: off
    from pipelines.search import INDEX_EVERY, deferred_indexing  # first: pipelines picks the SQLite
    from pipelines.store import open_db
    from sqlite_utils.utils import sqlite3
    # isort: on

    reader = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    columns = [row[1] for row in reader.execute("PRAGMA table_info(entries)")]
    rows = reader.execute(f"SELECT {', '.join(columns)} FROM entries ORDER BY rowid")
    db = open_db(target)
    insert = f"INSERT INTO entries ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
    copying = indexing = 0.0
    entries = 0
    while chunk := rows.fetchmany(INDEX_EVERY):  # a chunk at a time: the 5,000-feed database is 3 GB
        entries += len(chunk)
        began = time.process_time()
        db.execute("BEGIN IMMEDIATE")
        with deferred_indexing(db):
            db.conn.executemany(insert, chunk)
            copied = time.process_time()
        db.execute("COMMIT")
        copying += copied - began
        indexing += time.process_time() - copied
    reader.close()
    db.conn.close()
    return {
        "sqlite": f"{sqlite3.__name__} {sqlite3.sqlite_version}",
        "entries": entries,
        "copy_s": copying,
        "index_s": indexing,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_child(source: Path, sqlite: str) -> dict[str, str]:
    """One measurement in a fresh process; `stdlib` hides pysqlite3 from it."""
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        if sqlite == "stdlib":
            (Path(tmp) / "pysqlite3").mkdir()
            (Path(tmp) / "pysqlite3" / "__init__.py").write_text('raise ImportError("hidden by bench.fts_index")\n')
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [tmp, env.get("PYTHONPATH")]))
            env["FEEDLOOM_SQLITE"] = "stdlib"
        out = subprocess.run(
            [sys.executable, "-m", "bench.fts_index", "--source", str(source), "--child", str(Path(tmp) / "index.db")],
            env=env, check=True, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent,
        ).stdout
    return dict(part.split("=", 1) for part in out.split())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="a crawled feedloom database")
    parser.add_argument("--sqlite", choices=("auto", "stdlib"), default="auto")
    parser.add_argument("--rounds", type=int, default=0, help="alternate auto and stdlib this many times")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = measure(args.source, args.child)
        print(" ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={str(v).replace(' ', '_')}" for k, v in result.items()))
        return
    if not args.source.exists():
        parser.error(f"no database at {args.source}: run `python -m bench.run --feeds 500` first, or pass --source")
    modes = ["auto", "stdlib"] * args.rounds if args.rounds else [args.sqlite]
    seen: dict[str, list[dict[str, str]]] = {}
    for mode in modes:
        result = run_child(args.source, mode)
        seen.setdefault(result["sqlite"], []).append(result)
        print(f"{result['sqlite']:>22}: {result['entries']} entries, copy {result['copy_s']} s, "
              f"index {result['index_s']} s of CPU, peak RSS {result['peak_rss_mb']} MB", flush=True)
    if args.rounds:
        for name, results in seen.items():
            print(f"{name:>22}: median index {statistics.median(float(r['index_s']) for r in results):.2f} s, "
                  f"peak RSS {max(float(r['peak_rss_mb']) for r in results):.1f} MB")


if __name__ == "__main__":
    main()
