"""The conformance table of docs/conformance.md: every corpus file through our parse + normalize and its checks, in one process.

    FEEDLOOM_CORPUS=../shared/corpus python -m bench.conformance_report [--repeat 3]

Prints the per-folder table (files, checks, passed, failed, xfailed; feedparser
passthrough apart), the overall rates and the median parse + normalize time per
entry. The time is measured around parse_feed + normalize_entry only (the same
neutral-URL run for every file), without the checks; with --repeat N each file is
timed N times and its fastest run counts, which keeps one-off stalls out of the median.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from tests.conformance import check_file, list_files
from tests.conformance.model import run_ours
from tests.conformance.suite import NEUTRAL_BASE
from tests.conformance.summary import Tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="time each file this many times, keep the fastest (default 3)")
    args = parser.parse_args(argv)
    value = os.environ.get("FEEDLOOM_CORPUS")
    if not value or not Path(value).is_dir():
        print("set FEEDLOOM_CORPUS to the corpus folder (e.g. ../shared/corpus)", file=sys.stderr)
        return 2
    root = Path(value)
    started = time.perf_counter()
    tally = Tally()
    for relpath in list_files(root):
        report = check_file(root, relpath)
        data = report.as_dict()
        body = (root / relpath).read_bytes()
        for _ in range(max(0, args.repeat - 1)):
            data["seconds"] = min(data["seconds"], run_ours(body, NEUTRAL_BASE + relpath).seconds)
        tally.add(data)
    elapsed = time.perf_counter() - started
    print(tally.table())
    print()
    print(tally.headline())
    print(
        f"parse + normalize per file: median {statistics.median(tally.file_seconds) * 1000:.2f} ms, "
        f"total {sum(tally.file_seconds):.1f} s (fastest of {args.repeat}); whole report {elapsed:.0f} s; "
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs"
    )
    return 1 if tally.crashed or tally.total("ours")["failed"] or tally.total("passthrough")["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
