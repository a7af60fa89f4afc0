"""CPU per entry of each crawl stage, run one after another in this process: `python -m bench.stages [N]`.

Reads the first N feeds (default 60) of the benchmark corpus (bench/out/corpus-500-0, written by
`python -m bench.run` or `python -m bench.generate`), and times parsing (`decide_feed_response`),
the metadata, html and dedupe stages, and page routing (`feed_side_hash` + `page_reason`, which
reads the cleaned text as work_feed's does), with
`time.process_time`. `--profile` prints a cProfile of the same work instead.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from pathlib import Path

from crawler.outcome import Response, decide_feed_response
from crawler.pages import feed_side_hash, page_reason
from pipelines.dedupe import identify
from pipelines.stages import apply_html, metadata_stage

CORPUS = Path(__file__).resolve().parent / "out" / "corpus-500-0" / "feeds"
STAGES = ("parse", "route", "meta", "html", "dedupe")


def measure(bodies: list[bytes]) -> tuple[int, dict[str, float]]:
    """(entries, CPU seconds per stage) over the feed bodies."""
    spent = dict.fromkeys(STAGES, 0.0)
    entries = 0
    for i, body in enumerate(bodies):
        url = f"http://bench.test/{i}.xml"
        started = time.process_time()
        *items, _ = decide_feed_response(
            {"id": i, "url": url}, Response(url, 200, {"content-type": "application/xml"}, body), fetched_at="2026-11-26T00:00:00Z"
        )
        mark = time.process_time()
        spent["parse"] += mark - started
        for item in items:
            # In work_feed's order: the entry is normalized first, and routing reads its cleaned text.
            entry = metadata_stage(item.raw, item.context)
            now = time.process_time()
            spent["meta"], mark = spent["meta"] + now - mark, now
            entry = apply_html(entry, base_url=item.raw.base_url or entry.url)
            now = time.process_time()
            spent["html"], mark = spent["html"] + now - mark, now
            entry = identify(entry)
            now = time.process_time()
            spent["dedupe"], mark = spent["dedupe"] + now - mark, now
            feed_side_hash(item.raw)
            page_reason(item.raw, feed_full_content=None, recipe=None, known=None, text=lambda e=entry: e.content_text)
            now = time.process_time()
            spent["route"], mark = spent["route"] + now - mark, now
            entries += 1
    return entries, spent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("feeds", nargs="?", type=int, default=60, help="feeds of the corpus to read (default 60)")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help=f"folder of feed files (default {CORPUS})")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the work instead")
    args = parser.parse_args(argv)
    files = sorted(args.corpus.glob("*.xml"))[: args.feeds]
    if not files:
        raise SystemExit(f"{args.corpus}: no feed files; run `python -m bench.run` or `python -m bench.generate` first")
    bodies = [path.read_bytes() for path in files]
    if args.profile:
        profiler = cProfile.Profile(time.process_time)
        profiler.runcall(measure, bodies)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
        return 0
    entries, spent = measure(bodies)
    per_entry = {stage: round(seconds * 1000 / entries, 3) for stage, seconds in spent.items()}
    print(f"{entries} entries from {len(files)} feeds, ms of CPU per entry:", per_entry, f"total {sum(per_entry.values()):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
