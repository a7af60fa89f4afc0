"""The records of a conformance run: one Check per expectation, one FileReport per corpus file, and our output for a file."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from crawler.items import Entry, RawFeed
from crawler.outcome import feed_context
from crawler.parsers.feed import FeedError, parse_feed
from pipelines.stages import normalize_entry

# A fixed fetch time keeps the run reproducible; every dated file in the corpus is older.
FETCHED_AT = "2026-11-01T00:00:00Z"
OURS = "ours"  # a check on our normalized output
PASSTHROUGH = "passthrough"  # a feedparser expression about a field we do not keep, run on feedparser's own dict


@dataclass(frozen=True)
class Check:
    """One expectation and whether our output meets it."""

    name: str  # unique within its file; known_failures refers to it
    ok: bool
    kind: str = OURS
    detail: str = ""


@dataclass(frozen=True)
class Ours:
    """Our output for one input: the parsed feed and its entries as stored, or the FeedError message."""

    feed: RawFeed | None
    entries: tuple[Entry, ...]
    error: str | None
    seconds: float  # parse + normalize, wall clock

    @property
    def title(self) -> str | None:
        return self.feed.title if self.feed else None


def run_ours(body: bytes, url: str, headers: Mapping[str, str] | None = None) -> Ours:
    """parse_feed + normalize_entry, exactly as a crawl runs them (FeedError is an outcome, not a crash)."""
    start = time.perf_counter()
    try:
        feed = parse_feed(body, url, headers or {})
    except FeedError as exc:
        return Ours(None, (), str(exc), time.perf_counter() - start)
    ctx = feed_context({"id": None, "url": url, "categories": "[]"}, feed, FETCHED_AT)
    entries = tuple(normalize_entry(raw, ctx) for raw in feed.entries)
    return Ours(feed, entries, None, time.perf_counter() - start)


@dataclass
class FileCtx:
    """One corpus file as an adapter sees it; our output is computed once per URL and header set."""

    root: Path
    relpath: str
    _runs: dict[tuple[str, tuple[tuple[str, str], ...]], Ours] = field(default_factory=dict)

    @cached_property
    def path(self) -> Path:
        return self.root / self.relpath

    @cached_property
    def body(self) -> bytes:
        return self.path.read_bytes()

    def sibling(self, name: str) -> Path:
        return self.path.parent / name

    def ours(self, url: str, headers: Mapping[str, str] | None = None) -> Ours:
        key = (url, tuple(sorted((headers or {}).items())))
        if key not in self._runs:
            self._runs[key] = run_ours(self.body, url, headers)
        return self._runs[key]


@dataclass
class FileReport:
    """Everything the suite learned about one file."""

    relpath: str
    checks: list[Check]
    seconds: float  # our parse + normalize time for the file's main run
    entries: int
    error: str | None = None  # our FeedError, if any

    @property
    def folder(self) -> str:
        return folder_of(self.relpath)

    def as_dict(self) -> dict[str, Any]:
        return {
            "relpath": self.relpath,
            "folder": self.folder,
            "seconds": self.seconds,
            "entries": self.entries,
            "checks": [[c.name, c.ok, c.kind] for c in self.checks],
        }


def folder_of(relpath: str) -> str:
    """The corpus folder a file is reported under: its first two path parts (`rsshub-woshipm` has one)."""
    parts = relpath.split("/")
    return "/".join(parts[:2]) if len(parts) > 2 else parts[0]
