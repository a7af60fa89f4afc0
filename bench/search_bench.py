"""Search benchmark: build a seeded database of 100,000 mixed Chinese/English entries and time `feedloom search`."""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipelines.search import search_entries  # noqa: E402
from pipelines.store import open_db  # noqa: E402

GENERATOR_VERSION = 1
DEFAULT_DB = ROOT / "bench" / "out" / "search-100k.db"
EPOCH = datetime(2024, 6, 1, tzinfo=UTC)

# Words a product/e-commerce column uses; the rest of the vocabulary is made from the character pool.
ZH_WORDS = (
    "电商", "跨境电商", "直播带货", "私域", "复购", "履约", "供应链", "用户", "需求", "产品经理", "增长", "留存",
    "转化", "漏斗", "埋点", "指标", "体验", "交互", "原型", "评审", "迭代", "上线", "复盘", "团队", "协作",
    "会员", "定价", "补贴", "物流", "仓储", "退货", "支付", "风控", "客服", "社群", "内容", "算法", "推荐",
    "搜索", "广告", "投放", "品牌", "渠道", "门店", "生鲜", "社区团购", "独立站", "东南亚", "拉美", "出海",
    "数据分析", "商业化", "中台", "B端", "SaaS", "低代码", "大模型", "智能客服", "冷启动", "种子用户",
)
ZH_POOL = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而"
    "方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好"
    "应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向"
    "道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特"
    "件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处理"
    "世车给保持收连量场研究市场价格标准客户服务销售渠道模型策略目标方案规划执行沟通协调资源预算成本收入利润"
)
EN_WORDS = (
    "checkout", "funnel", "retention", "onboarding", "roadmap", "pricing", "marketplace", "seller", "buyer",
    "conversion", "cohort", "churn", "experiment", "interview", "research", "prototype", "launch", "feedback",
    "backlog", "strategy", "platform", "subscription", "revenue", "margin", "dashboard", "metric", "growth",
    "product", "manager", "design", "team", "user", "users", "customer", "support", "logistics", "warehouse",
    "refund", "payment", "fraud", "search", "ranking", "recommendation", "AI", "LLM", "agent", "model",
    "the", "a", "of", "and", "to", "in", "is", "that", "for", "with", "we", "our", "their", "it", "on", "as",
)
EN_SYLLABLES = ("ka", "ro", "mi", "sen", "tal", "ver", "po", "lin", "dra", "que", "ston", "bel", "nor", "fi", "gal")
AUTHORS = tuple(f"{s}{g}" for s in "陈林王李张刘周吴赵孙" for g in ("晓", "一鸣", "思远", "青", "可", "悦", "南乔")) + tuple(
    f"{a} {b}" for a in ("Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace") for b in ("Park", "Ortiz", "Rao", "Liu")
)
CATEGORIES = ("电商", "跨境电商", "产品设计", "用户研究", "增长", "运营", "数据分析", "职场", "AI", "Product", "Growth",
              "Design", "Research", "E-commerce", "SaaS", "Analytics")
QUERIES = ("电商", "跨境电商", "履约", "checkout", "AI 电商", '"user research" OR 复盘', 'C++ -" (OR', "数")


Vocabulary = tuple[list[str], list[float], list[str], list[float]]
CHUNK = 2000  # entries per generated batch; each batch has its own seed, so workers need not share state


def _vocabulary(seed: int) -> Vocabulary:
    rng = random.Random(f"search-bench:{seed}:{GENERATOR_VERSION}:vocabulary")
    zh = _ranked(rng, ZH_WORDS, ["".join(rng.choice(ZH_POOL) for _ in range(rng.choice((2, 2, 2, 3, 4)))) for _ in range(30_000)])
    en = _ranked(rng, EN_WORDS, ["".join(rng.choice(EN_SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(20_000)])
    # Zipf-like frequencies: a few words everywhere, most words rare, as in real text. Cumulative, so
    # random.choices does not re-add thousands of weights on every call.
    return zh, _zipf(len(zh)), en, _zipf(len(en))


def _ranked(rng: random.Random, common: tuple[str, ...], rare: list[str]) -> list[str]:
    """The column words among the 600 most frequent, in a seeded order; made-up words fill the rest."""
    words = list(rare)
    rng.shuffle(words)
    for word, rank in sorted(zip(common, rng.sample(range(600), len(common))), key=lambda pair: pair[1]):
        words.insert(rank, word)
    return words


def _zipf(size: int) -> list[float]:
    return list(accumulate(1 / (rank + 1) ** 1.05 for rank in range(size)))


def _text(rng: random.Random, words: list[str], weights: list[float], size: int, chinese: bool) -> str:
    """`size` bytes of UTF-8 text (to a character boundary) in sentences of 6 to 18 words."""
    per_word = 7  # bytes per word with its separator, a little under, the same for both vocabularies
    picked = rng.choices(words, cum_weights=weights, k=size // per_word + 1)
    parts: list[str] = []
    start = 0
    while start < len(picked):
        end = start + rng.randint(6, 18)
        sentence = picked[start:end]
        parts.append(("".join(sentence) + rng.choice("。，；！？")) if chinese else (" ".join(sentence).capitalize() + ". "))
        start = end
    return "".join(parts).encode("utf-8")[:size].decode("utf-8", "ignore")


def generate_chunk(seed: int, chunk: int, count: int, vocabulary: Vocabulary | None = None) -> list[dict[str, Any]]:
    """Entries chunk*CHUNK .. chunk*CHUNK+count-1: 60% Chinese, 30% English, 10% both; bodies of 2-5 KB."""
    zh, zh_w, en, en_w = vocabulary or _vocabulary(seed)
    rng = random.Random(f"search-bench:{seed}:{GENERATOR_VERSION}:{chunk}")
    rows = []
    for index in range(chunk * CHUNK, chunk * CHUNK + count):
        kind = rng.random()
        size = rng.randint(2048, 5120)
        if kind < 0.6:
            title = "".join(rng.choices(zh, cum_weights=zh_w, k=rng.randint(4, 9)))
            body = _text(rng, zh, zh_w, size, True)
        elif kind < 0.9:
            title = " ".join(rng.choices(en, cum_weights=en_w, k=rng.randint(4, 10))).capitalize()
            body = _text(rng, en, en_w, size, False)
        else:
            title = " ".join(rng.choices(en, cum_weights=en_w, k=2)) + " " + "".join(rng.choices(zh, cum_weights=zh_w, k=4))
            body = _text(rng, zh, zh_w, size // 2, True) + _text(rng, en, en_w, size - size // 2, False)
        published = EPOCH - timedelta(minutes=rng.randint(0, 5 * 365 * 24 * 60))
        rows.append({
            "id": hashlib.sha256(f"{seed}:{index}".encode()).hexdigest()[:16],
            "url": f"https://columns.example.org/{index}",
            "guid": f"https://columns.example.org/{index}",
            "title": title,
            "author": rng.choice(AUTHORS),
            "published_at": published.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "categories": json.dumps(rng.sample(CATEGORIES, rng.randint(1, 3)), ensure_ascii=False),
            "content_text": body,
            "content_html": f"<p>{body}</p>",
            "content_hash": hashlib.sha256(body.encode()).hexdigest()[:16],
            "identity": f"url:https://columns.example.org/{index}",
            "feed_id": 1 + index % 200,
            "word_count": len(body) // 4,
        })
    return rows


_COLUMNS = ("id", "url", "guid", "title", "author", "published_at", "categories", "content_text", "content_html",
            "content_hash", "identity", "feed_id", "word_count")
_WORKER_VOCABULARY: dict[int, Vocabulary] = {}  # per worker process, so each builds the vocabulary once


def _chunk_tuples(job: tuple[int, int, int]) -> list[tuple[Any, ...]]:
    seed, chunk, count = job
    if seed not in _WORKER_VOCABULARY:
        _WORKER_VOCABULARY[seed] = _vocabulary(seed)
    return [tuple(row[c] for c in _COLUMNS) for row in generate_chunk(seed, chunk, count, _WORKER_VOCABULARY[seed])]


def build_database(path: Path, count: int, seed: int) -> float:
    """Write `count` generated entries through the search triggers; returns the seconds it took."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    started = time.perf_counter()
    db = open_db(path)
    db.execute("BEGIN IMMEDIATE")
    db.conn.executemany(
        "INSERT INTO feeds (id, url, name, active, consecutive_failures) VALUES (?, ?, ?, 1, 0)",
        [(i, f"https://columns.example.org/feed/{i}.xml", f"feed {i}") for i in range(1, 201)],
    )
    db.execute("COMMIT")
    sql = f"INSERT INTO entries ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
    jobs = [(seed, chunk, min(CHUNK, count - chunk * CHUNK)) for chunk in range((count + CHUNK - 1) // CHUNK)]
    # Text is generated in other processes while this one writes: the trigram index is the slow part.
    with multiprocessing.Pool(max(1, (os.cpu_count() or 2) - 1)) as pool:
        for batch in pool.imap(_chunk_tuples, jobs):
            db.execute("BEGIN IMMEDIATE")
            db.conn.executemany(sql, batch)
            db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.close()
    return time.perf_counter() - started


def _cli_command(path: Path, query: str, limit: int) -> list[str]:
    return [sys.executable, "-m", "crawler.cli", "search", query, "--db", str(path), "--limit", str(limit)]


def _registered() -> bool:
    from crawler.cli import main

    return "search" in getattr(main, "commands", {})


def measure(path: Path, runs: int, limit: int) -> dict[str, Any]:
    db = open_db(path, create=False)
    library: dict[str, list[float]] = {}
    hits: dict[str, int] = {}
    for query in QUERIES:
        search_entries(db, query, limit=limit)  # warm the page cache
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            rows = search_entries(db, query, limit=limit)
            times.append((time.perf_counter() - started) * 1000)
        library[query] = times
        hits[query] = len(rows)
    total = db.execute("SELECT count(*) FROM entries").fetchone()[0]
    db.conn.close()
    cli: dict[str, list[float]] = {}
    if _registered():
        command = _cli_command
    else:
        def command(p: Path, q: str, n: int) -> list[str]:
            code = "import sys; from crawler.cli_browse import search; search(sys.argv[1:])"
            return [sys.executable, "-c", code, q, "--db", str(p), "--limit", str(n)]
    for query in QUERIES:
        times = []
        for _ in range(max(3, runs // 4)):
            started = time.perf_counter()
            subprocess.run(command(path, query, limit), check=True, capture_output=True, cwd=ROOT)
            times.append((time.perf_counter() - started) * 1000)
        cli[query] = times
    return {"entries": total, "library_ms": library, "cli_ms": cli, "hits": hits}


def report(result: dict[str, Any], build_s: float | None) -> str:
    lines = [f"entries: {result['entries']:,}" + (f", built in {build_s:.0f} s" if build_s is not None else "")]
    lines.append("| query | results (limit) | median in-process ms | median `feedloom search` ms |")
    lines.append("|---|---:|---:|---:|")
    for query in QUERIES:
        lib = statistics.median(result["library_ms"][query])
        cli = statistics.median(result["cli_ms"][query])
        shown = query.replace("|", "\\|")
        lines.append(f"| `{shown}` | {result['hits'][query]} | {lib:.1f} | {cli:.0f} |")
    every_lib = [t for times in result["library_ms"].values() for t in times]
    every_cli = [t for times in result["cli_ms"].values() for t in times]
    lines.append(f"| **all queries** | | **{statistics.median(every_lib):.1f}** | **{statistics.median(every_cli):.0f}** |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, default=DEFAULT_DB, help="Where to build the database.")
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=int, default=20, help="Timed runs per query (in-process).")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--reuse", action="store_true", help="Use an existing database at --db instead of building.")
    args = parser.parse_args(argv)
    build_s = None
    if not (args.reuse and args.db.exists()):
        args.db.parent.mkdir(parents=True, exist_ok=True)
        print(f"building {args.entries:,} entries (seed {args.seed}) at {args.db} ...", flush=True)
        build_s = build_database(args.db, args.entries, args.seed)
    size_mb = args.db.stat().st_size / 1e6
    result = measure(args.db, args.runs, args.limit)
    print(report(result, build_s))
    print(f"database size: {size_mb:.0f} MB")


if __name__ == "__main__":
    main()
