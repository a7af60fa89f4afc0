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
import threading
import time
from pathlib import Path

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _tree(root: int) -> list[int]:
    """ROOT and every process descending from it (the crawl and its worker processes)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def _tree_memory_kb(root: int) -> tuple[int, int]:
    """(sum of RSS, sum of PSS) in KB over the process tree: RSS counts shared pages once per process, PSS splits them."""
    rss = pss = 0
    for pid in _tree(root):
        try:
            rss += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KB
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
                    break
        except (OSError, ValueError, IndexError):
            continue
    return rss, pss


class _TreeSampler(threading.Thread):
    """Samples the tree's total memory every 0.1 s: ru_maxrss is one process's peak, not the sum of a pool's."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_rss_kb = self.peak_pss_kb = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.1):
            rss, pss = _tree_memory_kb(self.pid)
            self.peak_rss_kb = max(self.peak_rss_kb, rss)
            self.peak_pss_kb = max(self.peak_pss_kb, pss)


def measure(cmd: list[str], log_path: str) -> dict[str, float | int]:
    with open(log_path, "ab") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        sampler = _TreeSampler(proc.pid)
        sampler.start()
        # wait4 gives this child's own rusage (with its reaped worker processes), unlike RUSAGE_CHILDREN
        # which sums every child this process ever had.
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        sampler.done.set()
        sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "returncode": proc.returncode,
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # kilobytes on Linux; the largest single process of the tree
        "peak_tree_rss_mb": max(sampler.peak_rss_kb, usage.ru_maxrss) / 1024,  # the crawl and its workers together
        "peak_tree_pss_mb": sampler.peak_pss_kb / 1024,
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
