"""Which adapter reads which corpus folder, and the run over one file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conformance import detection, expectations, feedparser_expect, gofeed, reader, rssparser, woshipm
from tests.conformance.model import Check, FileCtx, FileReport

NEUTRAL_BASE = "https://corpus.example/"
# Not corpus data: the corpus describes itself in these.
_META = {"MANIFEST.tsv", "README.md"}

Adapter = Callable[[FileCtx], list[Check]]


def list_files(root: Path) -> list[str]:
    """Every data file of the corpus, as a path relative to it, sorted."""
    return sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.relative_to(root).as_posix() not in _META
    )


def adapter_for(relpath: str) -> Adapter | None:
    folder = relpath.split("/")
    if relpath.startswith("detection/gofeed-universal/"):
        return detection.universal
    if len(folder) > 1 and folder[1].startswith("feedparser"):
        return feedparser_expect.checks_for
    if relpath.startswith("extensions/gofeed/") or (len(folder) > 1 and folder[1].startswith("gofeed-")):
        return gofeed.checks_for
    if len(folder) > 1 and folder[1] == "reader":
        return reader.checks_for
    if len(folder) > 1 and folder[1] == "rss-parser":
        return rssparser.checks_for
    if relpath.startswith("rsshub-woshipm/"):
        return woshipm.checks_for
    if relpath.startswith("sanitize/miniflux-html-pages/"):
        return detection.sanitizer_stress
    if relpath.startswith(("real-world/", "encoding/miniflux/", "encoding/rsparser/", "detection/rsparser-html/", "opml/")):
        return expectations.checks_for
    return None


def check_file(root: Path, relpath: str) -> FileReport:
    """Our parse + normalize on one file (the crash and time check) and every expectation an adapter finds for it."""
    ctx = FileCtx(root, relpath)
    ours = ctx.ours(NEUTRAL_BASE + relpath)  # the same run for every file: it is what the timing measures
    adapter = adapter_for(relpath)
    checks = adapter(ctx) if adapter else []
    names = [c.name for c in checks]
    if len(set(names)) != len(names):
        raise AssertionError(f"{relpath}: duplicate check names {sorted({n for n in names if names.count(n) > 1})}")
    return FileReport(relpath, checks, seconds=ours.seconds, entries=len(ours.entries), error=ours.error)
