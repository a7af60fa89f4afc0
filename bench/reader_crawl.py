"""The reader (lemon24) side of the benchmark, run as its own process so its time and memory are its own."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path


def _provide_sgmllib() -> None:
    """reader's vendored feedparser imports `sgmllib` (the sgmllib3k package), which feedparser 6.0.14 no longer
    pulls in: it moved to its fork `feedparser_sgmllib`. Lend it the fork when sgmllib3k is not installed."""
    if importlib.util.find_spec("sgmllib") is None and importlib.util.find_spec("feedparser_sgmllib") is not None:
        import feedparser_sgmllib

        sys.modules["sgmllib"] = feedparser_sgmllib


def add_feeds(db: str, urls: list[str]) -> int:
    from reader import make_reader

    reader = make_reader(db)
    try:
        for url in urls:
            reader.add_feed(url, exist_ok=True)
    finally:
        reader.close()
    return len(urls)


def update_feeds(db: str, workers: int = 1) -> dict[str, int]:
    """Update every feed, due or not (as `feedloom crawl --all` does); count what happened."""
    from reader import make_reader

    reader = make_reader(db)
    counts = {"feeds": 0, "updated": 0, "not_modified": 0, "errors": 0, "new": 0, "modified": 0}
    try:
        for result in reader.update_feeds_iter(scheduled=False, workers=workers):
            counts["feeds"] += 1
            if result.error is not None:
                counts["errors"] += 1
            elif result.updated_feed is None:
                counts["not_modified"] += 1
            else:
                counts["updated"] += 1
                counts["new"] += result.updated_feed.new
                counts["modified"] += result.updated_feed.modified
        counts["stored"] = reader.get_entry_counts().total or 0
    finally:
        reader.close()
    return counts


def main(argv: list[str] | None = None) -> int:
    """python -m bench.reader_crawl add DB URLS_FILE | update DB [--workers N]; prints a JSON line."""
    parser = argparse.ArgumentParser(prog="python -m bench.reader_crawl", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add")
    add.add_argument("db")
    add.add_argument("urls", type=Path, help="one feed URL a line")
    update = sub.add_parser("update")
    update.add_argument("db")
    update.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    _provide_sgmllib()
    if args.command == "add":
        urls = [line.strip() for line in args.urls.read_text("utf-8").splitlines() if line.strip()]
        result: dict[str, int] = {"added": add_feeds(args.db, urls)}
    else:
        result = update_feeds(args.db, args.workers)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
