"""The crawl benchmark: time `feedloom crawl` (and reader, when installed) on a seeded corpus served from 127.0.0.1."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.generate import Corpus, ensure_corpus
from bench.server import CorpusServer

PROJECT = Path(__file__).resolve().parent.parent
RSS_TARGET_MB = 150.0
RSS_FLAT = 1.20  # peak RSS may grow at most 20% from the smallest run to the largest


@dataclass
class Measurement:
    """One timed run of one tool over the whole corpus."""

    tool: str
    phase: str  # "first" or "unchanged"
    wall_s: float
    cpu_s: float
    peak_rss_mb: float  # the process and its worker processes together (sum of their RSS, sampled every 0.1 s)
    returncode: int
    stored: int  # entries in the tool's database afterwards
    processed: int  # feed entries the run handled (all corpus items on a first crawl, none on an unchanged one)
    responses: dict[str, int] = field(default_factory=dict)  # HTTP status -> count, from the server
    detail: dict[str, Any] = field(default_factory=dict)
    load: float = 0.0  # 1-minute load average when the run ended: other work competing for the CPUs
    peak_pss_mb: float = 0.0  # the same tree's proportional set size: shared pages counted once
    peak_single_rss_mb: float = 0.0  # the largest single process (ru_maxrss)
    round: int = 1  # which round of the run (--rounds): the tools alternate going first

    @property
    def entries_per_s(self) -> float:
        return self.processed / self.wall_s if self.wall_s else 0.0


@dataclass
class Startup:
    """What `feedloom parse` costs before it parses anything."""

    python_wall_ms: float  # `python -c pass`, the floor
    help_wall_ms: float  # `feedloom --help`
    import_cli_ms: float  # -X importtime total of `import crawler.cli`
    parse_wall_ms: float  # `feedloom parse <one feed file>`, median
    parse_import_ms: float  # -X importtime total during that parse
    parse_entries: int
    parse_top_imports: list[tuple[str, float]]  # top-level packages by cumulative import ms
    feed_file: str


@dataclass
class Results:
    feeds: int
    seed: int
    items: int
    articles: int
    corpus_mb: float
    machine: dict[str, str]
    command: str
    measurements: list[Measurement]
    startup: Startup | None = None
    started_at: str = ""


# --- running a child and measuring it ------------------------------------------------


def run_timed(cmd: Sequence[str], log: Path) -> tuple[int, float, float, float, float, float]:
    """Run CMD to completion: (returncode, wall s, user+sys CPU s, peak RSS MB, peak PSS MB, largest single RSS MB).

    CPU includes the worker processes the child started and reaped; peak RSS is the sum over the child
    and its workers, the memory a small server must really have."""
    with open(log, "a", encoding="utf-8") as out:
        out.write("$ " + " ".join(cmd) + "\n")
    result = log.with_name("measure.json")
    result.unlink(missing_ok=True)
    # Through the small bench.measure process, so the peak RSS is the child's and not this process's.
    subprocess.run([sys.executable, "-m", "bench.measure", str(result), str(log), "--", *cmd], cwd=PROJECT, check=True)
    data = json.loads(result.read_text("utf-8"))
    return (
        int(data["returncode"]), float(data["wall_s"]), float(data["cpu_s"]), float(data["peak_tree_rss_mb"]),
        float(data["peak_tree_pss_mb"]), float(data["peak_rss_mb"]),
    )  # fmt: skip


def run_checked(cmd: Sequence[str], log: Path) -> str:
    """Run an untimed set-up step; its stdout, or an error naming the log."""
    proc = subprocess.run(list(cmd), cwd=PROJECT, capture_output=True, text=True, check=False)
    with open(log, "a", encoding="utf-8") as out:
        out.write("$ " + " ".join(cmd) + "\n" + proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"set-up step failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return proc.stdout


def feedloom_cmd() -> list[str]:
    script = Path(sys.executable).parent / "feedloom"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from crawler.cli import main; sys.argv[0] = 'feedloom'; main()"]


def fresh_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(str(path) + suffix).unlink(missing_ok=True)


# --- the two tools -------------------------------------------------------------------


def bench_feedloom(
    corpus: Corpus, server: CorpusServer, work: Path, log: Path, settings: Sequence[str] = (), round_no: int = 1
) -> list[Measurement]:
    db = work / "feedloom.db"
    fresh_db(db)
    feed_list = work / "feeds.toml"
    feed_list.write_text("".join(f'[[feeds]]\nurl = "{u}"\n\n' for u in corpus.feed_urls(server.url)), "utf-8")
    run_checked([*feedloom_cmd(), "import", str(feed_list), "--db", str(db)], log)
    crawl = [*feedloom_cmd(), "crawl", "--all", "--allow-private", "--quiet", "--db", str(db)]
    for setting in settings:
        crawl += ["-s", setting]
    out = []
    for phase in ("first", "unchanged"):
        server.take_counts()
        rc, wall, cpu, rss, pss, single = run_timed(crawl, log)
        responses = {str(k): v for k, v in sorted(server.take_counts().items())}
        row = _last_crawl(db)
        stored = _count(db, "entries")
        processed = corpus.items if phase == "first" and row.get("feeds_fetched") == corpus.feeds else 0
        if phase == "first" and row.get("feeds_fetched") != corpus.feeds:
            # Count only what was really handled when some feeds failed.
            processed = sum(int(row.get(k) or 0) for k in ("entries_new", "entries_merged", "entries_updated", "entries_unchanged"))
        out.append(
            Measurement(
                "feedloom", phase, wall, cpu, rss, rc, stored, processed, responses, row, os.getloadavg()[0], pss, single,
                round_no,
            )
        )
    return out


def bench_reader(
    corpus: Corpus, server: CorpusServer, work: Path, log: Path, workers: int, round_no: int = 1
) -> list[Measurement]:
    db = work / "reader.db"
    fresh_db(db)
    urls = work / "feeds.txt"
    urls.write_text("\n".join(corpus.feed_urls(server.url)) + "\n", "utf-8")
    child = [sys.executable, "-m", "bench.reader_crawl"]
    run_checked([*child, "add", str(db), str(urls)], log)
    out = []
    for phase in ("first", "unchanged"):
        server.take_counts()
        rc, wall, cpu, rss, pss, single = run_timed([*child, "update", str(db), "--workers", str(workers)], log)
        responses = {str(k): v for k, v in sorted(server.take_counts().items())}
        detail = _last_json_line(log)
        stored = int(detail.get("stored") or 0)
        processed = corpus.items if phase == "first" and detail.get("updated") == corpus.feeds else 0
        if phase == "first" and detail.get("updated") != corpus.feeds:
            processed = int(detail.get("new") or 0) + int(detail.get("modified") or 0)
        out.append(
            Measurement(
                "reader", phase, wall, cpu, rss, rc, stored, processed, responses, detail, os.getloadavg()[0], pss, single,
                round_no,
            )
        )
    return out


def _last_crawl(db: Path) -> dict[str, Any]:
    try:
        with sqlite3.connect(db) as conn:
            conn.row_factory = sqlite3.Row
            row = conn.execute("SELECT * FROM crawls ORDER BY id DESC LIMIT 1").fetchone()
            return dict(row) if row else {}
    except sqlite3.Error as exc:
        return {"error": str(exc)}


def _count(db: Path, table: str) -> int:
    try:
        with sqlite3.connect(db) as conn:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    except sqlite3.Error:
        return 0


def _last_json_line(log: Path) -> dict[str, Any]:
    for line in reversed(log.read_text("utf-8", errors="replace").splitlines()):
        if line.startswith("{"):
            try:
                return dict(json.loads(line))
            except ValueError:
                continue
    return {}


# --- start-up cost -------------------------------------------------------------------


def parse_importtime(stderr: str) -> tuple[float, list[tuple[str, float]]]:
    """(total ms, top-level modules by cumulative ms) from `python -X importtime` output."""
    top: list[tuple[str, float]] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line.split("|")
        if len(parts) < 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2]
        # Nesting is two spaces per level after the one space every name has.
        if name.startswith(" ") and not name.startswith("  "):
            top.append((name.strip(), int(parts[1]) / 1000))
    total = sum(ms for _, ms in top)
    return total, sorted(top, key=lambda t: -t[1])


def _wall_ms(cmd: Sequence[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(list(cmd), cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _importtime(args: Sequence[str]) -> tuple[float, list[tuple[str, float]], str]:
    cmd = [sys.executable, "-X", "importtime", *args]
    proc = subprocess.run(cmd, cwd=PROJECT, capture_output=True, text=True, check=False)
    total, top = parse_importtime(proc.stderr)
    return total, top, proc.stdout


def measure_startup(feed_file: Path, runs: int = 5) -> Startup:
    """Wall times of the commands, and import time net of what the bare interpreter imports anyway."""
    py = sys.executable
    python_ms = _wall_ms([py, "-c", "pass"], runs)
    help_ms = _wall_ms([*feedloom_cmd(), "--help"], runs)
    baseline, base_top, _ = _importtime(["-c", "pass"])
    interpreter = {name for name, _ in base_top}
    import_cli = min(_importtime(["-c", "import crawler.cli"])[0] for _ in range(3)) - baseline
    parse_ms = _wall_ms([*feedloom_cmd(), "parse", str(feed_file)], runs)
    code = "import sys; from crawler.cli import main; sys.argv = ['feedloom', 'parse', sys.argv[1]]; main()"
    total, top, stdout = _importtime(["-c", code, str(feed_file)])
    return Startup(
        python_wall_ms=python_ms,
        help_wall_ms=help_ms,
        import_cli_ms=import_cli,
        parse_wall_ms=parse_ms,
        parse_import_ms=total - baseline,
        parse_entries=sum(1 for line in stdout.splitlines() if line.startswith("{")),
        parse_top_imports=[(name, ms) for name, ms in top if name not in interpreter][:8],
        feed_file=str(feed_file),
    )


# --- profiling -----------------------------------------------------------------------


def profile_feedloom(corpus: Corpus, server: CorpusServer, work: Path, out: Path, log: Path) -> Path:
    """A first crawl under pyinstrument: a call tree (text) and self-time per function (pstats)."""
    if importlib.util.find_spec("pyinstrument") is None:
        raise SystemExit("--profile needs pyinstrument: pip install pyinstrument")
    db = work / "profile.db"
    fresh_db(db)
    feed_list = work / "feeds.toml"
    run_checked([*feedloom_cmd(), "import", str(feed_list), "--db", str(db)], log)
    session = out / "profile.pyisession"
    crawl = [str(Path(feedloom_cmd()[0])), "crawl", "--all", "--allow-private", "--quiet", "--db", str(db)]
    # Every 5 ms: the default 1 ms makes a session of gigabytes on a long crawl.
    run_timed([sys.executable, "-m", "pyinstrument", "-i", "0.005", "-r", "pyisession", "-o", str(session), *crawl], log)
    tree = out / "profile.txt"
    run_checked([sys.executable, "-m", "pyinstrument", "--load", str(session), "-r", "text", "--no-color",
                 "-p", "processor_options.filter_threshold=0.005", "-o", str(tree)], log)
    stats = out / "profile.pstats"
    run_checked([sys.executable, "-m", "pyinstrument", "--load", str(session), "-r", "pstats", "-o", str(stats)], log)
    (out / "profile-self.txt").write_text(self_time_table(stats), "utf-8")
    return tree


def self_time_table(pstats_file: Path, limit: int = 30) -> str:
    """Functions by their own (self) time, as a share of the whole run."""
    import pstats

    stats = pstats.Stats(str(pstats_file))
    rows = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for (_, _, tt, _, _) in rows.values()) or 1.0
    lines = [f"{'self %':>7} {'self s':>8} {'cum s':>8}  function"]
    for (filename, line, name), (_, _, tt, ct, _) in sorted(rows.items(), key=lambda kv: -kv[1][2])[:limit]:
        short = _short_path(filename)
        lines.append(f"{100 * tt / total:6.1f}% {tt:8.2f} {ct:8.2f}  {name} ({short}:{line})")
    return "\n".join(lines) + "\n"


def _short_path(filename: str) -> str:
    for marker in ("site-packages/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    try:
        return str(Path(filename).relative_to(PROJECT))
    except ValueError:
        return filename


# --- the report ----------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": str(os.cpu_count() or "?"),
        "cpu": cpu or platform.processor() or "?",
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def _fmt(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def _pick(results: Results, tool: str, phase: str, round_no: int | None = None) -> Measurement | None:
    return next(
        (m for m in results.measurements if m.tool == tool and m.phase == phase and round_no in (None, m.round)), None
    )


def rounds_of(results: Results) -> list[int]:
    return sorted({m.round for m in results.measurements})


def first_crawl_ratio(results: Results, round_no: int) -> float | None:
    """feedloom's first-crawl entries/s over reader's in the same round, or None without reader."""
    ours, theirs = _pick(results, "feedloom", "first", round_no), _pick(results, "reader", "first", round_no)
    if ours is None or theirs is None or not theirs.entries_per_s:
        return None
    return ours.entries_per_s / theirs.entries_per_s


def median_round(results: Results) -> int:
    """The round the report's main table shows: the median one by the first crawl's ratio to reader
    (by feedloom's entries/s when reader was not measured); of two middle rounds, the lower one."""
    def key(round_no: int) -> float:
        ratio = first_crawl_ratio(results, round_no)
        if ratio is not None:
            return ratio
        ours = _pick(results, "feedloom", "first", round_no)
        return ours.entries_per_s if ours else 0.0

    ranked = sorted(rounds_of(results), key=key)
    return ranked[(len(ranked) - 1) // 2] if ranked else 1


def _peak(results: Results, tool: str, phase: str, attr: str) -> float | None:
    values = [getattr(m, attr) for m in results.measurements if m.tool == tool and m.phase == phase]
    return max(values) if values else None


def render(results: Results, others: Sequence[Results] = ()) -> str:
    rounds = rounds_of(results)
    shown = median_round(results)
    ours1, ours2 = _pick(results, "feedloom", "first", shown), _pick(results, "feedloom", "unchanged", shown)
    theirs1, theirs2 = _pick(results, "reader", "first", shown), _pick(results, "reader", "unchanged", shown)
    m = results.machine
    title = (
        f"### {results.feeds} feeds, {results.items:,} feed entries ({results.articles:,} distinct articles), "
        f"{results.corpus_mb:.0f} MB, seed {results.seed}"
    )
    lines = [
        title,
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, {m['system']}. Command: `{results.command}`",
        "",
    ]
    several = len(rounds) > 1
    if several:
        note = (
            f"{len(rounds)} rounds, the tools taking turns to go first. The table shows round {shown}, the median "
            "round by the first crawl's ratio; peak memory is the largest of all rounds. Each round follows it."
        )
        lines += [note, ""]
    with_reader = theirs1 is not None
    head = "| | feedloom |" + (" reader | feedloom vs reader | target |" if with_reader else "")
    lines += [head, "|---|---:|" + ("---:|---:|---|" if with_reader else "")]

    def row(label: str, ours: float | None, theirs: float | None, ratio: str = "", target: str = "", digits: int = 1) -> None:
        cells = [label, _fmt(ours, digits) if ours is not None else "-"]
        if with_reader:
            cells += [_fmt(theirs, digits) if theirs is not None else "-", ratio, target]
        lines.append("| " + " | ".join(cells) + " |")

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    if ours1:
        speed = first_crawl_ratio(results, shown)
        row("first crawl: wall s", ours1.wall_s, theirs1.wall_s if theirs1 else None, digits=2)
        row("first crawl: CPU s (user+sys)", ours1.cpu_s, theirs1.cpu_s if theirs1 else None, digits=2)
        row(
            "first crawl: entries/s", ours1.entries_per_s, theirs1.entries_per_s if theirs1 else None,
            f"{speed:.2f}x" if speed else "-",
            (f">= 3x (stretch 5x): {verdict(speed >= 3)}" + (", stretch met" if speed >= 5 else "")) if speed else "",
            digits=0,
        )
        ours_cpu_rate = ours1.processed / ours1.cpu_s if ours1.cpu_s else 0.0
        theirs_cpu_rate = theirs1.processed / theirs1.cpu_s if theirs1 and theirs1.cpu_s else None
        row("first crawl: entries per CPU s", ours_cpu_rate, theirs_cpu_rate,
            f"{ours_cpu_rate / theirs_cpu_rate:.2f}x" if theirs_cpu_rate else "-",
            "less sensitive to a busy machine" if theirs_cpu_rate else "", digits=0)
        ours_rss = _peak(results, "feedloom", "first", "peak_rss_mb") or 0.0
        theirs_rss = _peak(results, "reader", "first", "peak_rss_mb")
        row("first crawl: peak RSS MB" + (", largest of all rounds" if several else ""), ours_rss, theirs_rss,
            f"{ours_rss / theirs_rss:.2f}x" if theirs_rss else "",
            f"<= {RSS_TARGET_MB:.0f} MB: {verdict(ours_rss <= RSS_TARGET_MB)}")
        row("first crawl: peak PSS MB (shared pages once)" + (", largest" if several else ""),
            _peak(results, "feedloom", "first", "peak_pss_mb"), _peak(results, "reader", "first", "peak_pss_mb"))
        row("entries stored", ours1.stored, theirs1.stored if theirs1 else None, "",
            "we merge the shared items" if with_reader else "", digits=0)
    if ours2:
        faster = theirs2.wall_s / ours2.wall_s if theirs2 and ours2.wall_s else None
        row("unchanged re-crawl: wall s", ours2.wall_s, theirs2.wall_s if theirs2 else None,
            f"{faster:.2f}x as fast" if faster else "-",
            f"no slower: {verdict(faster >= 1)}" if faster else "", digits=2)
        row("unchanged re-crawl: CPU s", ours2.cpu_s, theirs2.cpu_s if theirs2 else None, digits=2)
        ours2_rss = _peak(results, "feedloom", "unchanged", "peak_rss_mb") or 0.0
        row("unchanged re-crawl: peak RSS MB" + (", largest of all rounds" if several else ""), ours2_rss,
            _peak(results, "reader", "unchanged", "peak_rss_mb"), "",
            f"<= {RSS_TARGET_MB:.0f} MB: {verdict(ours2_rss <= RSS_TARGET_MB)}")
    lines.append("")
    if several:
        lines += _rounds_table(results, rounds)
    for meas in results.measurements:
        if meas.round != shown:
            if meas.returncode != 0:
                lines.append(f"- {meas.tool}, {meas.phase}, round {meas.round}: **exit {meas.returncode}**")
            continue
        status = "" if meas.returncode == 0 else f" **exit {meas.returncode}**"
        responses = ", ".join(f"{k}: {v}" for k, v in meas.responses.items())
        pages = meas.detail.get("pages_fetched") or meas.detail.get("pages_failed")
        extra = f", article pages fetched {meas.detail.get('pages_fetched') or 0} / failed {meas.detail.get('pages_failed') or 0}" if pages else ""
        lines.append(
            f"- {meas.tool}, {meas.phase}: HTTP responses {responses or 'none'}{extra}; "
            f"load average {meas.load:.1f} on {results.machine['nproc']} CPUs{status}"
        )
    if results.startup:
        s = results.startup
        tops = ", ".join(f"{name} {ms:.0f}" for name, ms in s.parse_top_imports[:6])
        startup = (
            f"Start-up: `python -c pass` {s.python_wall_ms:.0f} ms; `feedloom --help` {s.help_wall_ms:.0f} ms; "
            f"`import crawler.cli` {s.import_cli_ms:.0f} ms (-X importtime); "
            f"`feedloom parse` of one feed file ({s.parse_entries} entries) {s.parse_wall_ms:.0f} ms wall, "
            f"of which imports {s.parse_import_ms:.0f} ms (heaviest, ms: {tops})."
        )
        lines += ["", startup]
    scaling = sorted([results, *others], key=lambda r: r.feeds)
    scaling = [r for r in scaling if _pick(r, "feedloom", "first")]
    if len({r.feeds for r in scaling}) > 1:
        lines += ["", "Peak RSS of `feedloom crawl` by corpus size:", "",
                  "| feeds | feed entries | first crawl MB | unchanged re-crawl MB | peak of both MB | first crawl entries/s |",
                  "|---:|---:|---:|---:|---:|---:|"]
        peaks = []
        for r in scaling:
            first_mb = _peak(r, "feedloom", "first", "peak_rss_mb") or 0.0
            unchanged_mb = _peak(r, "feedloom", "unchanged", "peak_rss_mb")
            speed = statistics.median(
                m.entries_per_s for m in r.measurements if m.tool == "feedloom" and m.phase == "first"
            )
            peak = max(first_mb, unchanged_mb or 0.0)
            peaks.append(peak)
            lines.append(
                f"| {r.feeds:,} | {r.items:,} | {first_mb:.0f} | {f'{unchanged_mb:.0f}' if unchanged_mb else '-'} "
                f"| {peak:.0f} | {speed:,.0f} |"
            )
        # Flat means the largest corpus needs at most 20% more than the smallest, whichever phase peaks.
        growth = peaks[-1] / peaks[0]
        flat = (
            f"Peak RSS, largest corpus over smallest: {growth:.2f}x "
            f"(flat within 20%: {verdict(growth <= RSS_FLAT)}; at most {RSS_TARGET_MB:.0f} MB: "
            f"{verdict(max(peaks) <= RSS_TARGET_MB)})."
        )
        lines += ["", flat]
    return "\n".join(lines) + "\n"


def _rounds_table(results: Results, rounds: Sequence[int]) -> list[str]:
    """One row per round, and the spread of the ratios: the machine's noise, in the report."""
    with_reader = any(m.tool == "reader" for m in results.measurements)
    head = "| round | went first | feedloom first crawl entries/s | CPU s |"
    rule = "|---:|---|---:|---:|"
    if with_reader:
        head += " reader entries/s | CPU s | ratio | per CPU s | unchanged re-crawl, feedloom / reader s |"
        rule += "---:|---:|---:|---:|---|"
    head += " peak RSS / PSS MB |"
    rule += "---:|"
    lines = [head, rule]
    ratios, recrawls = [], []
    for round_no in rounds:
        ours1, ours2 = _pick(results, "feedloom", "first", round_no), _pick(results, "feedloom", "unchanged", round_no)
        theirs1 = _pick(results, "reader", "first", round_no)
        theirs2 = _pick(results, "reader", "unchanged", round_no)
        if ours1 is None:
            continue
        order = [m for m in results.measurements if m.round == round_no]
        cells = [str(round_no), order[0].tool if order else "-", f"{ours1.entries_per_s:,.0f}", f"{ours1.cpu_s:.1f}"]
        if with_reader:
            ratio = first_crawl_ratio(results, round_no)
            per_cpu = (theirs1.cpu_s / ours1.cpu_s) if theirs1 and ours1.cpu_s else None
            recrawl = theirs2.wall_s / ours2.wall_s if theirs2 and ours2 and ours2.wall_s else None
            if ratio is not None:
                ratios.append(ratio)
            if recrawl is not None:
                recrawls.append(recrawl)
            cells += [
                f"{theirs1.entries_per_s:,.0f}" if theirs1 else "-", f"{theirs1.cpu_s:.1f}" if theirs1 else "-",
                f"{ratio:.2f}x" if ratio is not None else "-", f"{per_cpu:.2f}x" if per_cpu else "-",
                f"{ours2.wall_s:.2f} / {theirs2.wall_s:.2f} ({recrawl:.2f}x)" if ours2 and theirs2 and recrawl else "-",
            ]
        ours_pss = max(m.peak_pss_mb for m in (ours1, ours2) if m)
        ours_rss = max(m.peak_rss_mb for m in (ours1, ours2) if m)
        cells.append(f"{ours_rss:.0f} / {ours_pss:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if ratios:
        summary = (
            f"First crawl over {len(ratios)} rounds: median {statistics.median(ratios):.2f}x reader's entries/s "
            f"({min(ratios):.2f}-{max(ratios):.2f}x), 3x or more in {sum(r >= 3 for r in ratios)} of {len(ratios)}."
        )
        if recrawls:
            summary += (
                f" Unchanged re-crawl: median {statistics.median(recrawls):.2f}x as fast as reader's, "
                f"no slower in {sum(r >= 1 for r in recrawls)} of {len(recrawls)}."
            )
        lines += [summary, ""]
    return lines


def load_results(path: Path) -> Results | None:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    data["measurements"] = [Measurement(**m) for m in data["measurements"]]
    if data.get("startup"):
        data["startup"]["parse_top_imports"] = [tuple(t) for t in data["startup"]["parse_top_imports"]]
        data["startup"] = Startup(**data["startup"])
    return Results(**data)


def main(argv: list[str] | None = None) -> int:
    """Time `feedloom crawl` (first, then unchanged) and reader on the same corpus; write bench/out/results.md."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=main.__doc__)
    parser.add_argument("--feeds", type=int, default=500, help="feeds in the corpus (default 500; 5000 checks RSS flatness)")
    parser.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    parser.add_argument(
        "--setting", action="append", default=[], metavar="NAME=VALUE",
        help="passed to `feedloom crawl -s` (repeatable), e.g. FEEDLOOM_WORKERS=2",
    )
    parser.add_argument("--skip-reader", action="store_true", help="do not measure reader even if it is installed")
    parser.add_argument("--reader-workers", type=int, default=1, help="reader's update_feeds(workers=N) (default 1, its default)")
    parser.add_argument(
        "--rounds", type=int, default=3,
        help="rounds of both tools, taking turns to go first; the report shows the median round (default 3)",
    )
    parser.add_argument("--skip-startup", action="store_true", help="do not measure `feedloom parse` start-up")
    parser.add_argument("--profile", action="store_true", help="also profile a first crawl with pyinstrument")
    parser.add_argument("--out", type=Path, default=PROJECT / "bench" / "out", help="output folder (default bench/out)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be 1 or more, not {args.rounds}")

    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = out / f"work-{args.feeds}-{args.seed}"
    work.mkdir(exist_ok=True)
    log = work / "log.txt"
    log.write_text("", "utf-8")
    say = lambda text: print(text, file=sys.stderr, flush=True)

    say(f"corpus: {args.feeds} feeds, seed {args.seed} ...")
    corpus = ensure_corpus(out / f"corpus-{args.feeds}-{args.seed}", args.feeds, args.seed)
    say(f"  {corpus.items:,} entries, {corpus.articles:,} distinct articles, {corpus.bytes / 1e6:.0f} MB")
    server = CorpusServer.for_corpus(corpus.root, list(corpus.feed_paths))
    measurements: list[Measurement] = []
    command = "python -m bench.run" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    with_reader = not args.skip_reader and importlib.util.find_spec("reader") is not None
    if not args.skip_reader and not with_reader:
        say("reader is not installed (pip install -e '.[bench]'): measuring feedloom alone")
    with server:
        say(f"serving at {server.url}")
        for round_no in range(1, args.rounds + 1):
            tools = ["feedloom", "reader"] if with_reader else ["feedloom"]
            if round_no % 2 == 0:
                tools.reverse()  # this machine's speed drifts: neither tool always goes first
            for tool in tools:
                say(f"round {round_no} of {args.rounds}: {tool} (first crawl, then unchanged) ...")
                if tool == "feedloom":
                    measurements += bench_feedloom(corpus, server, work, log, args.setting, round_no)
                else:
                    measurements += bench_reader(corpus, server, work, log, args.reader_workers, round_no)
                _say_measurements(say, measurements[-2:])
        if args.profile:
            say("profiling a first crawl with pyinstrument ...")
            tree = profile_feedloom(corpus, server, work, out, log)
            say(f"  {tree} and {out / 'profile-self.txt'}")
    startup = None
    if not args.skip_startup:
        say("start-up of `feedloom parse` ...")
        startup = measure_startup(corpus.root_path / corpus.feed_paths[0].lstrip("/"))
    results = Results(
        feeds=corpus.feeds, seed=corpus.seed, items=corpus.items, articles=corpus.articles,
        corpus_mb=corpus.bytes / 1e6, machine=machine(), command=command, measurements=measurements,
        startup=startup, started_at=time.strftime("%Y-%m-%d %H:%M:%S"),
    )
    (out / f"results-{corpus.feeds}-{corpus.seed}.json").write_text(json.dumps(asdict(results), indent=1), "utf-8")
    others = [r for p in sorted(out.glob(f"results-*-{corpus.seed}.json"))
              if (r := load_results(p)) is not None and r.feeds != corpus.feeds]
    text = render(results, others)
    (out / "results.md").write_text(text, "utf-8")
    print(text)
    failed = [m for m in measurements if m.returncode != 0]
    for m in failed:
        say(f"{m.tool} {m.phase} exited {m.returncode}: see {log}")
    return 1 if failed else 0


def _say_measurements(say: Any, measurements: Sequence[Measurement]) -> None:
    for m in measurements:
        say(f"  {m.tool} {m.phase}: {m.wall_s:.2f}s wall, {m.cpu_s:.2f}s CPU, {m.peak_rss_mb:.0f} MB, "
            f"{m.stored:,} stored, {m.entries_per_s:,.0f} entries/s, exit {m.returncode}, responses {m.responses}")


if __name__ == "__main__":
    raise SystemExit(main())
