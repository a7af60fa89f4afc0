"""Where a first crawl's CPU goes, by process and thread: `python -m bench.threads [--feeds N] [-s NAME=VALUE]`.

Serves the benchmark corpus (bench/out/corpus-N-0, generated when missing) from 127.0.0.1, runs one
`feedloom crawl --all` into a fresh database, and samples /proc every 0.5 s (`--every S`): the CPU time of each
thread of the crawl process (its main thread runs the reactor; the store writes on another) and of
each child process (the worker processes, multiprocessing's resource tracker), and the peak memory
(VmHWM) of each process. A thread's CPU is its last sample, so the final half second may be missing.
`--timeline S` also prints, for every S seconds of the crawl, how busy each of them was (100% is one
core): where the cores sat idle, and who was waiting for whom; and the crawl's memory then (the
sum of its processes' RSS).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from bench.generate import ensure_corpus
from bench.run import PROJECT, feedloom_cmd, fresh_db, run_checked
from bench.server import CorpusServer

TICKS = os.sysconf("SC_CLK_TCK")
RSS_LABEL = "RSS MB"


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of a process, by thread id."""
    spent: dict[int, float] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return spent
    for tid in tids:
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        spent[int(tid)] = (int(fields[11]) + int(fields[12])) / TICKS
    return spent


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry))
    return found


def rss_mb(pid: int) -> float:
    """A process's resident memory now (VmRSS), in MB; 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def peak_mb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def label(crawl_pid: int, pid: int, tid: int) -> str:
    if pid == crawl_pid:
        return "crawl process, main thread (reactor)" if tid == pid else f"crawl process, thread {tid}"
    return f"child process {pid}"


def timeline(samples: list[tuple[float, dict[str, float]]], step: float) -> str:
    """A Markdown table of each label's share of a core in every `step` seconds of the samples.

    A label "RSS MB" in a sample is not CPU time but memory at that moment: it gets a column of its own.
    """
    memory = [spent.get(RSS_LABEL) for _, spent in samples]
    samples = [(at, {k: v for k, v in spent.items() if k != RSS_LABEL}) for at, spent in samples]
    names = sorted({name for _, spent in samples for name in spent}, key=lambda n: -samples[-1][1].get(n, 0.0))
    names = [n for n in names if samples[-1][1].get(n, 0.0) >= 0.1]
    has_memory = any(m is not None for m in memory)
    lines = [
        "| seconds | " + " | ".join(names) + " | both cores |" + (f" {RSS_LABEL} |" if has_memory else ""),
        "|---" * (len(names) + 2 + has_memory) + "|",
    ]
    previous_at, previous = 0.0, {}
    for index, (at, spent) in enumerate(samples):
        if at - previous_at < step and index != len(samples) - 1:
            continue
        span = at - previous_at
        shares = [(spent.get(n, 0.0) - previous.get(n, 0.0)) / span for n in names]
        cells = " | ".join(f"{100 * share:.0f}%" for share in shares)
        mb = f" {memory[index]:.0f} |" if has_memory and memory[index] is not None else (" |" if has_memory else "")
        lines.append(f"| {previous_at:.0f}-{at:.0f} | {cells} | {50 * sum(shares):.0f}% |{mb}")
        previous_at, previous = at, spent
    return "\n".join(lines)


STORE_STATS = {
    "feedloom/store_waited_s": "the reactor waiting for room in the writer's queue",
    "feedloom/store_writing_s": "the writer thread inside its batches (wall)",
    "feedloom/store_writing_cpu_s": "... its CPU time",
}


def store_times(log: str) -> dict[str, float]:
    """The store's times from the stats Scrapy logs at the crawl's end (`feedloom crawl -v`)."""
    found = re.findall(r"'(feedloom/store_[a-z_]+)': ([0-9.]+)", log)
    return {name: float(value) for name, value in found}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.threads", description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("-s", "--setting", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--timeline", type=float, metavar="S", help="also print how busy each was, every S seconds")
    parser.add_argument("--every", type=float, default=0.5, metavar="S", help="sample /proc every S seconds (0.5)")
    parser.add_argument("--out", type=Path, default=PROJECT / "bench" / "out")
    args = parser.parse_args(argv)
    corpus = ensure_corpus(args.out.resolve() / f"corpus-{args.feeds}-0", args.feeds, 0)
    work = args.out.resolve() / f"threads-{args.feeds}"
    work.mkdir(parents=True, exist_ok=True)
    cpu: dict[tuple[int, int], float] = {}
    memory: dict[int, int] = {}
    samples: list[tuple[float, dict[str, float]]] = []
    with CorpusServer.for_corpus(corpus.root, list(corpus.feed_paths)) as server:
        db = work / "feedloom.db"
        fresh_db(db)
        feed_list = work / "feeds.toml"
        feed_list.write_text("".join(f'[[feeds]]\nurl = "{u}"\n\n' for u in corpus.feed_urls(server.url)), "utf-8")
        run_checked([*feedloom_cmd(), "import", str(feed_list), "--db", str(db)], work / "log.txt")
        # -v: Scrapy's log, for the store's times in its stats (parsed below); --quiet: no progress line
        command = [*feedloom_cmd(), "crawl", "--all", "--allow-private", "--quiet", "-v", "--db", str(db)]
        for setting in args.setting:
            command += ["-s", setting]
        log = work / "crawl.log"
        started = time.monotonic()
        with open(log, "w", encoding="utf-8") as log_file:
            crawl = subprocess.Popen(command, stderr=log_file)
            while crawl.poll() is None:
                for pid in (crawl.pid, *children(crawl.pid)):
                    for tid, seconds in thread_cpu(pid).items():
                        cpu[(pid, tid)] = seconds
                    memory[pid] = max(memory.get(pid, 0), peak_mb(pid))
                spent: dict[str, float] = {}
                for (pid, tid), seconds in cpu.items():
                    name = label(crawl.pid, pid, tid)
                    spent[name] = spent.get(name, 0.0) + seconds
                spent[RSS_LABEL] = sum(rss_mb(pid) for pid in (crawl.pid, *children(crawl.pid)))
                samples.append((time.monotonic() - started, spent))
                time.sleep(args.every)
        wall = time.monotonic() - started
    print(f"{corpus.items:,} entries in {wall:.1f} s wall: {corpus.items / wall:.0f} entries/s (exit {crawl.returncode})")
    by_label: dict[str, float] = {}
    for (pid, tid), seconds in cpu.items():
        name = label(crawl.pid, pid, tid)
        by_label[name] = by_label.get(name, 0.0) + seconds
    print("| where | CPU s | ms per entry |\n|---|---:|---:|")
    for name, seconds in sorted(by_label.items(), key=lambda kv: -kv[1]):
        if seconds >= 0.1:
            print(f"| {name} | {seconds:.1f} | {1000 * seconds / corpus.items:.2f} |")
    total = sum(by_label.values())
    print(f"| all | {total:.1f} | {1000 * total / corpus.items:.2f} |")
    store = store_times(log.read_text("utf-8", errors="replace"))
    if store:
        print("\n| the store (Scrapy stats) | s |\n|---|---:|")
        for name, label_ in STORE_STATS.items():
            if name in store:
                print(f"| {label_} | {store[name]:.2f} |")
    print("\n| process | peak RSS MB (VmHWM) |\n|---|---:|")
    for pid, mb in memory.items():
        print(f"| {'crawl process' if pid == crawl.pid else f'child process {pid}'} | {mb} |")
    if args.timeline and samples:
        print("\n" + timeline(samples, args.timeline))
    return crawl.returncode


if __name__ == "__main__":
    sys.exit(main())
