"""Parse and normalize one feed response, in the crawl's own process or in a pool of worker processes.

The crawl's time is CPU spent in parsing and per-entry normalization; one Python process uses one core.
`work_feed` is a pure function of its job, so the spider can run it in worker processes (spawned, not
forked: the crawl process runs a reactor and threads) while the reactor and the store stay in the main
process. Entries whose article page must be fetched come back unnormalized: the page completes them
first and the pipelines normalize them in the main process, as before.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from crawler.items import Entry, EntryItem, FeedFetch, RawEntry
from crawler.outcome import Response, decide_feed_response
from crawler.pages import feed_side_hash, page_reason
from crawler.recipes import Recipe, recipe_for

if TYPE_CHECKING:  # the html module loads with the first feed to normalize, not with the crawl
    from pipelines.html import HtmlRules

logger = logging.getLogger(__name__)

# Below this many due feeds, starting worker processes costs more than it saves.
AUTO_MIN_FEEDS = 20
AUTO_MAX_WORKERS = 4
# Each worker process holds about 45 MB: on a machine this small, memory matters more than speed.
AUTO_MIN_MEMORY = 1024**3
# With this many feeds per worker in hand or waiting, the crawl process parses every STEAL_EVERY-th
# feed itself: its reactor thread is idle most of the time. Taking more starved the workers (their
# jobs wait while the reactor parses): on 2 cores, 1 in 4 gave about 505 entries/s, 1 in 1 about
# 400 and none about 430 (docs/benchmarks.md).
BACKLOG = 2
STEAL_EVERY = 4
# Larger feeds always go to a worker, where a parser that runs out of memory or crashes on them takes
# only the worker down: the crawl process parses only feeds of ordinary size.
STEAL_MAX_BYTES = 1024 * 1024


class WorkerCrashed(RuntimeError):
    """A worker process died (killed, out of memory, a crash in a C library) while parsing a feed."""


@dataclass(frozen=True)
class FeedJob:
    """Everything `work_feed` needs, picklable: the feed's row, its response, what its entries looked like last time."""

    feed: Mapping[str, Any]
    response: Response
    fetched_at: str
    duration_ms: int | None = None
    known_hashes: Mapping[str, str] = field(default_factory=dict)  # guid or link -> feed hash last stored
    recipes: tuple[Recipe, ...] = ()
    rules: HtmlRules | None = None  # None: the default rules
    # False when nothing but feedloom's own pipelines sees the items (the spider's batches): a
    # normalized entry then comes back with only its raw entry's link and guid, which is all the store
    # reads. The feed's copy of the body is neither pickled back nor held with the batch.
    keep_raw: bool = True


@dataclass(frozen=True)
class Routed:
    """One entry of the feed: normalized already, or waiting for its article page (`page_reason`)."""

    item: EntryItem
    page_reason: str | None = None


def work_feed(job: FeedJob) -> tuple[list[Routed], FeedFetch]:
    """The feed's entries, each routed (page or not) and normalized when no page is needed; its fetch record."""
    *items, fetch = decide_feed_response(
        job.feed, job.response, fetched_at=job.fetched_at, duration_ms=job.duration_ms
    )
    assert isinstance(fetch, FeedFetch)
    routed: list[Routed] = []
    for item in items:
        assert isinstance(item, EntryItem)
        raw = item.raw
        known = job.known_hashes.get(raw.guid or raw.link or "")
        # Normalized at most once: for the summary check when page_reason reaches it (the cleaned
        # text spares it a parse of the raw body), else after, when no page is needed.
        normalized = _Normalized(item, job.rules)
        reason = page_reason(
            raw,
            feed_full_content=job.feed.get("full_content"),
            recipe=recipe_for(raw.link, job.recipes) if raw.link else None,
            known={"feed_hash": known} if known else None,
            text=normalized.text,
        )
        item = replace(item, feed_hash=feed_side_hash(raw))
        if reason is None and (entry := normalized.entry()) is not None:
            slim = raw if job.keep_raw else RawEntry(guid=raw.guid, link=raw.link)
            item = replace(item, raw=slim, entry=entry, normalized=True)
        routed.append(Routed(item, reason))
    return routed, fetch


class _Normalized:
    """One entry's normalize_entry, run on first use; None when it failed (the pipelines then try and
    record the failure, as they always have)."""

    def __init__(self, item: EntryItem, rules: HtmlRules | None) -> None:
        self._item = item
        self._rules = rules
        self._done = False
        self._entry: Entry | None = None

    def entry(self) -> Entry | None:
        if not self._done:
            self._done = True
            from pipelines.stages import (
                normalize_entry,  # the html and metadata modules: heavy
            )

            item = self._item
            try:
                self._entry = normalize_entry(item.raw, item.context, self._rules)
            except Exception:
                logger.debug("normalizing %s in a worker failed; the pipelines will try", item.raw.link, exc_info=True)
        return self._entry

    def text(self) -> str | None:
        entry = self.entry()
        return entry.content_text if entry is not None else None


_M_ARENA_MAX = -8  # mallopt parameter, from glibc's malloc.h


def limit_malloc_arenas(arenas: int) -> bool:
    """Cap glibc's malloc arenas for this process (mallopt M_ARENA_MAX); False where that is not possible.

    glibc gives threads that allocate at once arenas of their own, up to 8 per core, and an arena keeps
    memory it freed. The crawl process runs the reactor, the store's writer thread (SQLite, the search
    index) and Twisted's DNS threads: with 2 arenas its peak fell from 101 to 94 MB on 500 feeds.
    Arenas made before the call stay, so it runs before the crawl starts its threads.
    """
    if arenas <= 0 or not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # not glibc (musl, a sandbox): nothing to tune
        return False


def auto_workers(setting: Any, feeds_due: int) -> int:
    """Worker processes for a crawl: the setting when it is a number; else, for a large crawl on a machine
    with 1 GiB of memory or more, one per core but one (at least one)."""
    if setting not in (None, "", "auto"):
        try:
            return max(0, int(setting))
        except (TypeError, ValueError):
            raise ValueError(f"FEEDLOOM_WORKERS must be a number or 'auto', not {setting!r}") from None
    if feeds_due < AUTO_MIN_FEEDS or _memory_bytes() < AUTO_MIN_MEMORY:
        return 0
    # The crawl process keeps about one core busy itself (the reactor, and the store's writer thread
    # inside SQLite): on two cores one worker was faster than two, and used 90 MB less (docs/benchmarks.md).
    return max(1, min((os.cpu_count() or 1) - 1, AUTO_MAX_WORKERS))


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return AUTO_MIN_MEMORY  # unknown: assume enough


class ParsePool:
    """Runs `work_feed` in `workers` processes, or inline; restarts after a crash.

    The processes start when the crawl has had `start_after` feeds to parse, so an unchanged re-crawl
    (all 304) or one changed feed never pays for them; feeds are parsed inline until they are ready.
    When worker processes cannot start at all, the rest of the crawl parses inline.
    """

    def __init__(self, workers: int, start_after: int = 3) -> None:
        self.workers = workers
        self.start_after = start_after
        self._executor: ProcessPoolExecutor | None = None
        self._warming: list[Future[None]] = []
        self._parsed = 0
        self._in_flight = 0  # jobs handed to the worker processes and not answered yet
        # Feeds in flight when a worker died are parsed again one at a time, in one spare process.
        self._alone: ProcessPoolExecutor | None = None
        self._alone_lock = asyncio.Lock()

    def start(self) -> None:
        """Start the processes (they import the parsers) without waiting for them."""
        if self.workers and self._executor is None:
            try:
                self._executor = _new_executor(self.workers)
                self._warming = [self._executor.submit(_warm_up) for _ in range(self.workers)]
            except (OSError, NotImplementedError, ImportError) as exc:  # no processes here (sandbox, limits)
                self._give_up(f"worker processes cannot start ({exc})")

    @property
    def ready(self) -> bool:
        if self._executor is None or not all(f.done() for f in self._warming):
            return False
        if any(f.cancelled() or f.exception() is not None for f in self._warming):
            self._give_up("worker processes died while starting")
            return False
        return True

    async def run(self, job: FeedJob) -> tuple[list[Routed], FeedFetch]:
        if not self.workers or job.response.status != 200:
            return work_feed(job)  # nothing to parse, or no pool: no pickling either
        self._parsed += 1
        if self._executor is None and self._parsed >= self.start_after:
            self.start()
        steal = (
            self._in_flight >= self.workers * BACKLOG
            and self._parsed % STEAL_EVERY == 0
            and len(job.response.body) <= STEAL_MAX_BYTES
        )
        if not self.ready or steal:
            return work_feed(job)
        self._in_flight += 1
        try:
            return await self._submit(job)
        finally:
            self._in_flight -= 1

    async def _submit(self, job: FeedJob) -> tuple[list[Routed], FeedFetch]:
        executor = self._executor
        assert executor is not None
        try:
            return await asyncio.wrap_future(executor.submit(work_feed, job))
        except BrokenProcessPool:
            self._discard(executor)  # the next feed starts a fresh pool
        # The pool died under one of the feeds in flight, not necessarily this one: parse this one
        # again in a process of its own, so that only the feed that kills a worker is recorded as failed.
        async with self._alone_lock:
            if self._alone is None:
                self._alone = _new_executor(1)
            try:
                return await asyncio.wrap_future(self._alone.submit(work_feed, job))
            except BrokenProcessPool:
                self._alone.shutdown(wait=False)
                self._alone = None
                raise WorkerCrashed(
                    "the parser process died on this feed (a crash in a parser, or the out-of-memory killer)"
                ) from None

    def close(self) -> None:
        for executor in (self._executor, self._alone):
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)
        self._executor = self._alone = None

    def _discard(self, executor: ProcessPoolExecutor) -> None:
        if self._executor is executor:  # not a fresh pool another feed has started since
            self._executor = None
            executor.shutdown(wait=False, cancel_futures=True)

    def _give_up(self, why: str) -> None:
        logger.warning("%s: parsing in the crawl process instead", why)
        if self._executor is not None:
            self._discard(self._executor)
        self.workers = 0


def _new_executor(workers: int) -> ProcessPoolExecutor:
    # spawn, not fork: the crawl process runs a reactor and threads
    return ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker, initargs=(os.getpid(),)
    )


def _start_worker(crawl_pid: int) -> None:
    # Ctrl-C reaches the whole process group: the crawl process shuts the pool down in order, and a
    # worker must not die first with a KeyboardInterrupt traceback on the user's terminal. The same for
    # SIGTERM, which `systemctl stop` (and some cron timeouts) send to every process of the crawl: a
    # worker that died first would leave the feeds in its hands recorded as parser crashes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(crawl_pid,), name="feedloom-orphan-watch", daemon=True).start()


def _exit_with(crawl_pid: int) -> None:
    """End this worker when the crawl process is gone (SIGKILL, a cron timeout). The worker holds its
    own end of the job queue, so it would otherwise wait for a job forever, holding its memory."""
    while os.getppid() == crawl_pid:
        time.sleep(0.5)
    os._exit(0)


def _warm_up() -> None:
    # Import the heavy modules before the first feed arrives.
    import pipelines.html
    import pipelines.metadata
    import pipelines.stages  # noqa: F401 - imported for its side effect: loaded before the first feed
