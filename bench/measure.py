"""Run one command and write its wall time, CPU time and peak RSS as JSON, measured from a small process.

Why a separate launcher: Linux charges a child's peak RSS with the peak of the process it was forked
from (exec records the parent's high-water mark), so a child forked from the runner, which holds the
corpus and the server, would show the runner's memory. Forked from this small process, it shows its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def measure(cmd: list[str], log_path: str) -> dict[str, float | int]:
    with open(log_path, "ab") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        # wait4 gives this child's own rusage, unlike RUSAGE_CHILDREN which sums every child so far.
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "returncode": proc.returncode,
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # kilobytes on Linux
    }


def main(argv: list[str] | None = None) -> int:
    """python -m bench.measure RESULT_JSON LOG -- CMD ...: run CMD, its output appended to LOG."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 4 or args[2] != "--":
        print(main.__doc__, file=sys.stderr)
        return 2
    result_path, log_path, cmd = args[0], args[1], args[3:]
    result = measure(cmd, log_path)
    with open(result_path, "w", encoding="utf-8") as out:
        json.dump(result, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
