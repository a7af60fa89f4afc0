"""The export benchmark: entries per second and peak memory of each `feedloom export` format on a seeded database."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
DOCS = PROJECT / "docs" / "benchmarks.md"
SECTION = "## Exports"
GENERATOR_VERSION = 1  # bump when the rows for a seed change, so a cached database is rebuilt
EPOCH = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)
FEEDS = 200
CHINESE_SHARE = 0.3
FORMATS = ("jsonl", "csv", "parquet", "atom", "markdown", "opml")

EN = ("product manager user growth metric retention funnel pricing roadmap feature experiment cohort churn"
      " onboarding interview insight research market segment team design prototype launch release feedback"
      " backlog priority strategy vision platform seller buyer checkout conversion dashboard signal habit loop"
      " channel content community creator subscription revenue margin budget quarter the a every our with").split()
ZH = ("产品经理 用户 需求 增长 运营 数据 分析 体验 设计 迭代 电商 平台 流量 转化率 策略 团队 市场 内容 社区 商业化"
      " 留存 拉新 复购 私域 直播 短视频 会员 定价 供应链 商家 消费者 场景 痛点 闭环 指标 漏斗 实验 版本 上线 复盘"
      " 方法论 框架 模型 路径 价值 效率 成本 品牌 渠道 投放 算法 推荐 我们 其实 因为 所以 但是 如果").split()
LABELS = ("产品经理", "最新文章", "运营", "电商", "growth", "product", "saas", "newsletter", "design", "data")


@dataclass
class Run:
    fmt: str
    phase: str  # "full" or "re-run" (markdown over its own unchanged output)
    entries: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    output_mb: float
    returncode: int

    @property
    def per_s(self) -> float:
        return self.entries / self.wall_s if self.wall_s else 0.0


# -- the database ---------------------------------------------------------------


def _words(rng: random.Random, chinese: bool, low: int, high: int) -> str:
    pool = ZH if chinese else EN
    words = rng.choices(pool, k=rng.randint(low, high))
    return "".join(words) if chinese else " ".join(words)


def _paragraphs(rng: random.Random, chinese: bool, count: int) -> list[str]:
    return [_words(rng, chinese, 20, 90) + ("。" if chinese else ".") for _ in range(count)]


def build_database(path: Path, entries: int, seed: int) -> None:
    """A feedloom database of `entries` synthetic entries; the same seed gives the same rows."""
    from pipelines.store import open_db

    if path.exists():
        path.unlink()
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    db = open_db(path)
    rng = random.Random(seed)
    # Paragraphs are drawn from a fixed pool: the export's cost is in the rows, not in how they were made.
    pools = {lang: _paragraphs(rng, lang, 1500) for lang in (False, True)}
    feeds = []
    for feed_id in range(1, FEEDS + 1):
        chinese = rng.random() < CHINESE_SHARE
        labels = rng.sample(LABELS, rng.randint(0, 2))
        feeds.append((feed_id, chinese, labels))
        db.execute(
            "INSERT INTO feeds (id, url, name, categories, site_url, language, added_at, active) VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
            [feed_id, f"https://site{feed_id}.example.{'cn' if chinese else 'org'}/feed",
             _words(rng, chinese, 2, 4), json.dumps(labels, ensure_ascii=False),
             f"https://site{feed_id}.example.{'cn' if chinese else 'org'}/", "zh-CN" if chinese else "en",
             "2024-01-01T00:00:00Z"],
        )
    authors = {lang: [_words(rng, lang, 1, 2) for _ in range(300)] for lang in (False, True)}
    # Index triggers fire per row; a bulk load goes faster without them and rebuilds the index once after.
    triggers = db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'entries'").fetchall()
    for name, _ in triggers:
        db.execute(f'DROP TRIGGER "{name}"')
    db.execute("BEGIN")
    rows, sightings = [], []
    for index in range(entries):
        feed_id, chinese, labels = feeds[rng.randrange(FEEDS)]
        key = f"{seed}:{index}"
        entry_id = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
        url = f"https://site{feed_id}.example.{'cn' if chinese else 'org'}/p/{index}.html"
        paragraphs = rng.choices(pools[chinese], k=rng.randint(3, 12))
        html = "".join(f"<p>{p}</p>" for p in paragraphs)
        if rng.random() < 0.5:
            html = f'<p><img src="https://img.example.com/{index}.jpg" alt=""></p>' + html
        text = "\n\n".join(paragraphs)
        published = EPOCH - timedelta(seconds=rng.randrange(2 * 365 * 86400))
        updated = published + timedelta(hours=rng.randint(1, 72)) if rng.random() < 0.3 else None
        categories = labels + rng.sample(LABELS, rng.randint(0, 3))
        iso = published.strftime("%Y-%m-%dT%H:%M:%SZ")
        rows.append((
            entry_id, url, url, _words(rng, chinese, 4, 10), rng.choice(authors[chinese]), iso,
            updated.strftime("%Y-%m-%dT%H:%M:%SZ") if updated else None,
            json.dumps(list(dict.fromkeys(categories)), ensure_ascii=False), text[:140], html, text,
            f"https://img.example.com/{index}.jpg" if "<img" in html else None, "zh-CN" if chinese else "en",
            len(text) if chinese else len(text.split()), max(1, len(text) // 1200),
            hashlib.blake2b(html.encode(), digest_size=16).hexdigest(), f"url:{url}", feed_id, iso, iso, iso,
        ))
        sightings.append((entry_id, feed_id, url, url, iso, iso))
        if rng.random() < 0.1:
            other = rng.randint(1, FEEDS)
            if other != feed_id:
                sightings.append((entry_id, other, url, url, iso, iso))
        if len(rows) >= 5000:
            _flush(db, rows, sightings)
    _flush(db, rows, sightings)
    db.execute("COMMIT")
    for _, sql in triggers:
        db.execute(sql)
    try:
        from pipelines.search import rebuild_search
    except ImportError:
        pass
    else:
        rebuild_search(db)
    db.execute("CREATE TABLE _bench (key TEXT PRIMARY KEY, value TEXT)")
    db.execute("INSERT INTO _bench VALUES ('params', ?)", [_params(entries, seed)])
    db.conn.close()


def _flush(db: object, rows: list[tuple[object, ...]], sightings: list[tuple[object, ...]]) -> None:
    conn = db.conn  # type: ignore[attr-defined]
    conn.executemany(
        "INSERT INTO entries (id, url, guid, title, author, published_at, updated_at, categories, summary, content_html,"
        " content_text, cover_image, language, word_count, reading_minutes, content_hash, identity, feed_id,"
        " first_seen_at, last_seen_at, last_changed_at) VALUES (" + ", ".join("?" * 21) + ")",
        rows,
    )
    conn.executemany(
        "INSERT OR IGNORE INTO entry_sightings (entry_id, feed_id, feed_guid, feed_link, first_seen_at, last_seen_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        sightings,
    )
    rows.clear()
    sightings.clear()


def _params(entries: int, seed: int) -> str:
    return json.dumps({"version": GENERATOR_VERSION, "entries": entries, "seed": seed}, sort_keys=True)


def ensure_database(path: Path, entries: int, seed: int) -> float:
    """Reuse the database at `path` when it was built with these parameters; returns seconds spent building."""
    import sqlite3

    if path.exists():
        try:
            conn = sqlite3.connect(path)
            row = conn.execute("SELECT value FROM _bench WHERE key = 'params'").fetchone()
            conn.close()
            if row and row[0] == _params(entries, seed):
                return 0.0
        except sqlite3.Error:
            pass
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    build_database(path, entries, seed)
    return time.monotonic() - started


# -- measuring ----------------------------------------------------------------


# The child reports its own high-water mark: VmHWM belongs to the process image after exec, whereas
# ru_maxrss also counts what the forked copy of this (larger) parent held before exec.
_CHILD = """
import atexit, sys
def _peak():
    try:
        with open('/proc/self/status') as status:
            kb = next(line.split()[1] for line in status if line.startswith('VmHWM:'))
    except (OSError, StopIteration):
        import resource
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // (1024 if sys.platform == 'darwin' else 1)
    sys.stderr.write(f'BENCH_PEAK_KB {kb}\\n')
atexit.register(_peak)
from crawler.cli_export import export
export.main(sys.argv[1:], prog_name='feedloom export')
"""


def run_child(args: list[str]) -> tuple[int, float, float, float]:
    """Run `feedloom export ARGS` in a fresh process: (returncode, wall s, CPU s, peak RSS MB of that process)."""
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, *args], cwd=PROJECT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    stderr = proc.stderr.read()  # a summary line or an error: small, so reading before waiting cannot block
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    proc.returncode = returncode = os.waitstatus_to_exitcode(status)
    peak = re.search(r"BENCH_PEAK_KB (\d+)", stderr)
    if returncode or not peak:
        print(stderr, file=sys.stderr)
    return returncode, wall, usage.ru_utime + usage.ru_stime, int(peak.group(1)) / 1024 if peak else 0.0


def _size_mb(path: Path) -> float:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6
    return path.stat().st_size / 1e6 if path.exists() else 0.0


def measure(db: Path, work: Path, fmt: str, limit: int | None, entries: int) -> list[Run]:
    out = work / ("posts" if fmt == "markdown" else f"export.{ 'atom' if fmt == 'atom' else fmt}")
    if out.is_dir():
        shutil.rmtree(out)
    elif out.exists():
        out.unlink()
    args = ["--format", fmt, "-o", str(out), "--db", str(db)]
    if limit is not None and fmt != "opml":
        args += ["--limit", str(limit)]
    count = FEEDS if fmt == "opml" else (min(limit, entries) if limit is not None else entries)
    runs = []
    code, wall, cpu, rss = run_child(args)
    runs.append(Run(fmt, "full", count, wall, cpu, rss, _size_mb(out), code))
    if fmt == "markdown":
        code, wall, cpu, rss = run_child(args)
        runs.append(Run(fmt, "re-run", count, wall, cpu, rss, _size_mb(out), code))
    return runs


# -- reporting ----------------------------------------------------------------


def table(large: list[Run], small: dict[tuple[str, str], Run], small_n: int) -> str:
    lines = [
        f"| format | entries | wall s | CPU s | entries/s | peak RSS MB | peak RSS MB at {small_n:,} | output MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in large:
        name = run.fmt + (" (re-run, unchanged)" if run.phase == "re-run" else "")
        if run.fmt == "opml":
            name += " (the feed list)"
        other = small.get((run.fmt, run.phase))
        lines.append(
            f"| {name} | {run.entries:,} | {run.wall_s:.1f} | {run.cpu_s:.1f} | {run.per_s:,.0f} | "
            f"{run.peak_rss_mb:.0f} | {f'{other.peak_rss_mb:.0f}' if other else '-'} | {run.output_mb:.0f} |"
        )
    return "\n".join(lines)


def write_section(text: str, path: Path = DOCS) -> None:
    """Put `text` under `## Exports` in docs/benchmarks.md, leaving every other section as it is."""
    body = path.read_text("utf-8") if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    block = f"{SECTION}\n\n{text.strip()}\n\n"
    if pattern.search(body):
        body = pattern.sub(lambda _: block, body, count=1)
    else:
        body = body.rstrip("\n") + "\n\n" + block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body.rstrip("\n") + "\n", "utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=100_000, help="entries in the database (default 100,000)")
    parser.add_argument("--small", type=int, default=10_000, help="also run with --limit N, to show memory is flat")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=PROJECT / "bench" / "out" / "exports")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--no-docs", action="store_true", help="print the table, do not edit docs/benchmarks.md")
    args = parser.parse_args(argv)
    formats = [f for f in args.formats.split(",") if f]
    db = args.work / f"exports-{args.entries}-{args.seed}.db"
    built = ensure_database(db, args.entries, args.seed)
    print(f"database {db}: {f'built in {built:.0f}s' if built else 'reused'} ({_size_mb(db):.0f} MB)", flush=True)
    large: list[Run] = []
    small: dict[tuple[str, str], Run] = {}
    for fmt in formats:
        for run in measure(db, args.work, fmt, args.small, args.entries):
            small[(run.fmt, run.phase)] = run
        for run in measure(db, args.work, fmt, None, args.entries):
            large.append(run)
            print(f"{run.fmt:9} {run.phase:7} {run.entries:>7} entries {run.wall_s:6.1f}s cpu {run.cpu_s:6.1f}s "
                  f"{run.per_s:>8,.0f}/s peak {run.peak_rss_mb:5.0f} MB  out {run.output_mb:6.0f} MB  rc={run.returncode}",
                  flush=True)
    failed = [r for r in large + list(small.values()) if r.returncode]
    result = table(large, small, args.small)
    command = f"python -m bench.export_bench --entries {args.entries} --small {args.small} --seed {args.seed}"
    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    text = (
        f"`{command}` ({machine}; database {_size_mb(db):.0f} MB, entries of 3-12 paragraphs, 30% Chinese).\n"
        "Each format runs as its own `feedloom export` process, writing to a file on the same disk; peak RSS is\n"
        "that process's high-water mark (`VmHWM`), Python and imports included. The second RSS column repeats the run with\n"
        f"`--limit {args.small}`: equal numbers mean memory does not grow with the number of entries. Markdown keeps\n"
        "its manifest (entry id, file name, hash) in a temporary SQLite file, not in memory; its re-run finds every\n"
        "post unchanged and rewrites nothing. OPML exports the feed list, not entries. entries/s is entries over wall\n"
        "time; on a shared machine wall time varies from run to run (CPU time, user + system of the child, less so).\n\n"
        + result
    )
    print(result)
    if not args.no_docs and not failed:
        write_section(text)
        print(f"wrote {SECTION} in {DOCS}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
