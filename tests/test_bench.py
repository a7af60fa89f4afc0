"""The benchmark's corpus generator and server: deterministic, valid feeds, the promised mix (the benchmark itself is not run here)."""

from __future__ import annotations

import gzip
import re
import sys
import urllib.request
from collections import Counter
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urlsplit

import feedparser
import pytest

from bench.generate import (
    MAX_BODY,
    MIN_BODY,
    MIN_CJK_CHARS,
    MIN_WORDS,
    ensure_corpus,
    generate_corpus,
    load_corpus,
)
from bench.run import parse_importtime, run_timed
from bench.server import CorpusServer

FEEDS = 40
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory):
    return generate_corpus(tmp_path_factory.mktemp("corpus"), FEEDS, seed=7)


@pytest.fixture(scope="module")
def parsed(corpus):
    # Unsanitized, so the bodies are the bytes the generator wrote.
    return [
        feedparser.parse(corpus.root_path / p.lstrip("/"), sanitize_html=False, resolve_relative_uris=False)
        for p in corpus.feed_paths
    ]


def _files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "feeds").iterdir())}


@pytest.mark.parametrize("seed", [0, 7])
def test_same_seed_gives_the_same_bytes(tmp_path, seed):
    first = generate_corpus(tmp_path / "a", 6, seed=seed)
    again = generate_corpus(tmp_path / "b", 6, seed=seed)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert (again.items, again.shared_items, again.chinese_items) == (first.items, first.shared_items, first.chinese_items)


def test_another_seed_gives_another_corpus(tmp_path):
    generate_corpus(tmp_path / "a", 6, seed=1)
    generate_corpus(tmp_path / "b", 6, seed=2)
    assert _files(tmp_path / "a") != _files(tmp_path / "b")


def test_every_feed_parses_with_its_item_count(corpus, parsed):
    assert len(parsed) == FEEDS
    for doc, expected in zip(parsed, corpus.items_per_feed):
        assert not doc.bozo, doc.get("bozo_exception")
        assert len(doc.entries) == expected
        assert 20 <= expected <= 50


def test_rss_and_atom_are_mixed(parsed):
    versions = Counter(doc.version for doc in parsed)
    assert set(versions) == {"rss20", "atom10"}
    assert min(versions.values()) >= FEEDS // 3


def _canonical(link: str) -> str:
    return link.split("?", 1)[0]


def test_about_ten_percent_of_items_appear_in_two_feeds(corpus, parsed):
    feeds_per_article: dict[str, set[int]] = {}
    for index, doc in enumerate(parsed):
        for entry in doc.entries:
            feeds_per_article.setdefault(_canonical(entry.link), set()).add(index)
    items = sum(len(doc.entries) for doc in parsed)
    shared = sum(1 for doc in parsed for e in doc.entries if len(feeds_per_article[_canonical(e.link)]) == 2)
    assert max(len(feeds) for feeds in feeds_per_article.values()) == 2
    assert 0.08 <= shared / items <= 0.12
    assert shared == corpus.shared_items
    assert len(feeds_per_article) == corpus.articles


def test_shared_items_differ_in_tracking_parameters_somewhere(parsed):
    links: dict[str, set[str]] = {}
    for doc in parsed:
        for entry in doc.entries:
            links.setdefault(_canonical(entry.link), set()).add(entry.link)
    assert any(len(variants) > 1 for variants in links.values())


def test_about_thirty_percent_of_items_are_chinese(corpus, parsed):
    items = [e for doc in parsed for e in doc.entries]
    chinese = sum(1 for e in items if CJK.search(e.title))
    assert 0.22 <= chinese / len(items) <= 0.38
    assert chinese == corpus.chinese_items


def test_bodies_are_realistic_html(parsed):
    bodies = [e.content[0].value for doc in parsed for e in doc.entries]
    sizes = [len(b.encode("utf-8")) for b in bodies]
    assert min(sizes) >= MIN_BODY - 1 and max(sizes) <= MAX_BODY
    joined = "\n".join(bodies)
    for marker in ("<h2>", "<img src=", "data-src=", "utm_", "<ul>", "<blockquote>"):
        assert marker in joined, marker


def test_bodies_are_long_enough_not_to_read_as_summaries(parsed):
    entries = [e for doc in parsed for e in doc.entries]
    chinese = [e.content[0].value for e in entries if CJK.search(e.title)]
    english = [re.sub(r"<[^>]*>", " ", e.content[0].value) for e in entries if not CJK.search(e.title)]
    assert chinese and min(len(CJK.findall(b)) for b in chinese) >= MIN_CJK_CHARS
    assert english and min(len(b.split()) for b in english) >= MIN_WORDS


def test_manifest_round_trips_and_is_reused(corpus):
    assert load_corpus(corpus.root) == corpus
    assert ensure_corpus(corpus.root, FEEDS, seed=7) == corpus


def test_feed_urls_use_the_given_base(corpus):
    urls = corpus.feed_urls("http://127.0.0.1:8123/")
    assert urls[0] == "http://127.0.0.1:8123/feeds/000.xml"
    assert len(set(urls)) == FEEDS


def _get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.mark.parametrize("validator", ["etag", "last_modified"])
def test_server_answers_304_to_either_validator(corpus, validator):
    path = corpus.feed_paths[3]
    with CorpusServer.for_corpus(corpus.root, [path]) as server:
        status, headers, body = _get(server.url + path)
        assert status == 200 and body == (corpus.root_path / path.lstrip("/")).read_bytes()
        sent = {"etag": {"If-None-Match": headers["ETag"]}, "last_modified": {"If-Modified-Since": headers["Last-Modified"]}}
        status, _, body = _get(server.url + path, **sent[validator])
        assert status == 304 and body == b""
        assert server.take_counts() == {200: 1, 304: 1}


def test_server_gzips_when_asked_and_404s_the_unknown(corpus):
    path = corpus.feed_paths[0]
    with CorpusServer.for_corpus(corpus.root, [path]) as server:
        assert urlsplit(server.url).hostname == "127.0.0.1"
        status, headers, body = _get(server.url + path, **{"Accept-Encoding": "gzip"})
        assert status == 200 and headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(body) == (corpus.root_path / path.lstrip("/")).read_bytes()
        assert _get(server.url + "/feeds/nope.xml")[0] == 404


def test_parse_importtime_sums_top_level_modules():
    stderr = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       100 |        100 |   _io\n"
        "import time:       200 |       1500 | json\n"
        "import time:      3000 |       3000 |     json.decoder\n"
        "import time:       500 |       2500 | crawler.cli\n"
    )
    total, top = parse_importtime(stderr)
    assert total == pytest.approx(4.0)
    assert top == [("crawler.cli", 2.5), ("json", 1.5)]


def test_peak_rss_is_the_childs_own_not_the_runners(tmp_path):
    ballast = bytearray(300 * 1024 * 1024)  # the runner holding a corpus in memory
    ballast[::4096] = b"x" * len(ballast[::4096])  # touch every page so it is resident
    # The tree's PSS is sampled every 0.1 s, which this short child may not live to see: not asserted on.
    code, wall, cpu, rss, _pss, single = run_timed([sys.executable, "-c", "x = bytearray(60 * 1024 * 1024)"], tmp_path / "log.txt")
    assert code == 0 and wall > 0 and cpu > 0
    assert 60 <= single < 150 and 60 <= rss < 150
    del ballast


def test_peak_memory_counts_the_worker_processes_too(tmp_path):
    """A crawl with worker processes uses their memory as well: the tree's sum, not one process's peak."""
    script = (
        "import subprocess, sys, time; x = bytearray(60 * 1024 * 1024); x[::4096] = b'x' * len(x[::4096]);"
        "c = [sys.executable, '-c', 'import time; y = bytearray(60 * 1024 * 1024); y[::4096] = b\"y\" * len(y[::4096]); time.sleep(1)'];"
        "ps = [subprocess.Popen(c) for _ in range(2)]; [p.wait() for p in ps]"
    )
    code, _wall, _cpu, rss, pss, single = run_timed([sys.executable, "-c", script], tmp_path / "log.txt")
    assert code == 0
    assert 60 <= single < 120  # ru_maxrss: the largest one alone
    assert rss >= 180 and pss >= 170  # three processes of 60 MB each


def test_stage_timings_cover_every_entry_of_the_feeds(tmp_path):
    from bench.generate import generate_corpus
    from bench.stages import STAGES, main, measure

    corpus = generate_corpus(tmp_path / "c", feeds=3, seed=5)
    bodies = [p.read_bytes() for p in sorted((tmp_path / "c" / "feeds").glob("*.xml"))]
    entries, spent = measure(bodies)
    assert entries == corpus.items and set(spent) == set(STAGES)
    assert all(seconds >= 0 for seconds in spent.values()) and spent["html"] > 0
    assert main(["2", "--corpus", str(tmp_path / "c" / "feeds")]) == 0


def test_thread_report_accounts_for_the_crawl_and_its_worker(tmp_path, capsys):
    from bench.threads import main

    assert main(["--feeds", "24", "--out", str(tmp_path), "-s", "FEEDLOOM_WORKERS=1", "--timeline", "0.5", "--every", "0.2"]) == 0
    report = capsys.readouterr().out
    assert "crawl process, main thread (reactor)" in report
    assert "child process" in report  # the worker process
    assert "| all |" in report and "peak RSS MB" in report
    assert "| both cores | RSS MB |" in report and "| 0-" in report


def test_timeline_gives_each_ones_share_of_a_core_per_step():
    from bench.threads import timeline

    samples = [(1.0, {"a": 0.5}), (2.0, {"a": 1.5, "b": 0.5}), (3.0, {"a": 2.0, "b": 1.5})]
    table = timeline(samples, 2.0).splitlines()
    assert table[0] == "| seconds | a | b | both cores |"
    assert table[2] == "| 0-2 | 75% | 25% | 50% |"
    assert table[3] == "| 2-3 | 50% | 100% | 75% |"


def test_timeline_shows_the_memory_of_each_step_in_a_column_of_its_own():
    from bench.threads import RSS_LABEL, timeline

    samples = [(1.0, {"a": 0.5, RSS_LABEL: 80.0}), (2.0, {"a": 1.5, RSS_LABEL: 120.4})]
    table = timeline(samples, 2.0).splitlines()
    assert table[0] == f"| seconds | a | both cores | {RSS_LABEL} |"
    assert table[2] == "| 0-2 | 75% | 38% | 120 |"


def _results(figures, feeds=500):
    """Results of a run: figures maps round -> (feedloom wall s, reader wall s, feedloom peak RSS MB)."""
    from bench.run import Measurement, Results

    measurements = []
    for round_no, (ours, theirs, rss) in figures.items():
        pair = [
            [Measurement("feedloom", "first", ours, ours * 1.8, rss, 0, 900, 1000, round=round_no),
             Measurement("feedloom", "unchanged", 1.0, 1.0, 70.0, 0, 900, 0, round=round_no)],
            [Measurement("reader", "first", theirs, theirs, 50.0, 0, 1000, 1000, round=round_no),
             Measurement("reader", "unchanged", 2.0, 1.5, 48.0, 0, 1000, 0, round=round_no)],
        ]
        for tool in pair if round_no % 2 else reversed(pair):
            measurements += tool
    machine = {"nproc": "2", "cpu": "x", "python": "3.11", "system": "Linux"}
    return Results(feeds, 0, 1000, 900, 1.0, machine, "python -m bench.run", measurements)


def test_the_report_shows_the_median_round_and_every_round():
    from bench.run import median_round, render

    # Ratios: round 1 3.0x, round 2 2.5x, round 3 3.5x: the median is round 1.
    results = _results({1: (10.0, 30.0, 130.0), 2: (10.0, 25.0, 149.0), 3: (10.0, 35.0, 120.0)})
    assert median_round(results) == 1
    report = render(results)
    assert "The table shows round 1, the median round" in report
    assert "| first crawl: entries/s | 100 | 33 | 3.00x | >= 3x (stretch 5x): **met** |" in report
    # Memory is judged on the largest of the rounds, not the median one.
    assert "| first crawl: peak RSS MB, largest of all rounds | 149.0 | 50.0 |" in report
    assert "| 2 | reader | 100 | 18.0 | 40 | 25.0 | 2.50x |" in report  # reader went first in round 2
    assert "First crawl over 3 rounds: median 3.00x reader's entries/s (2.50-3.50x), 3x or more in 2 of 3." in report
    assert "Unchanged re-crawl: median 2.00x as fast as reader's, no slower in 3 of 3." in report


def test_of_two_middle_rounds_the_report_shows_the_lower():
    from bench.run import median_round

    results = _results({1: (10.0, 31.0, 130.0), 2: (10.0, 29.0, 130.0), 3: (10.0, 40.0, 130.0), 4: (10.0, 20.0, 130.0)})
    assert median_round(results) == 2  # 2.9x, not 3.1x


def test_a_single_round_reports_as_before(tmp_path):
    import dataclasses
    import json

    from bench.run import load_results, render

    results = _results({1: (10.0, 25.0, 130.0)})
    report = render(results)
    assert "rounds" not in report and "| round |" not in report
    assert "| first crawl: entries/s | 100 | 40 | 2.50x | >= 3x (stretch 5x): **not met** |" in report
    # Results written before rounds existed have no "round": they load as round 1.
    data = dataclasses.asdict(results)
    for measurement in data["measurements"]:
        del measurement["round"]
    path = tmp_path / "results-500-0.json"
    path.write_text(json.dumps(data), "utf-8")
    loaded = load_results(path)
    assert loaded is not None and render(loaded) == report


def test_fts_index_bench_indexes_a_crawled_database_with_either_sqlite(demo_db, capsys):
    import sqlite3 as stdlib_sqlite3

    from bench.fts_index import main

    main(["--source", str(demo_db), "--rounds", "1"])
    lines = capsys.readouterr().out.splitlines()
    runs = [line for line in lines if "entries, copy" in line]
    assert len(runs) == 2
    assert all(": 15 entries, copy " in line for line in runs)
    assert any(f"sqlite3_{stdlib_sqlite3.sqlite_version}:" in line for line in runs), lines
    medians = [line for line in lines if "median index" in line]
    assert len(medians) == len({line.split(":")[0] for line in runs})
