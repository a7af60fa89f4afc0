"""Parse and normalize feed responses in a pool of worker processes, or in the crawl's own process.

The crawl's time is CPU spent in parsing and per-entry normalization; one Python process uses one core.
`work_feed` (in crawler.work, re-exported here) is a pure function of its job, so the spider can run it
in worker processes (spawned, not forked: the crawl process runs a reactor and threads) while the
reactor and the store stay in the main process. Entries whose article page must be fetched come back
unnormalized: the page completes them first and the pipelines normalize them in the main process.
This module is the pool, for the crawl process; a worker process imports only crawler.work.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pickle
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from queue import SimpleQueue
from typing import Any

from crawler.items import FeedFetch

# What a worker process runs lives in crawler.work, which it imports without this module's asyncio;
# the names stay importable from here.
from crawler.work import FeedJob, Routed, _receive, _send, work_feed

__all__ = [
    "BACKLOG", "DEPTH", "STEAL_EVERY", "STEAL_MAX_BYTES", "FeedJob", "ParsePool", "Routed", "WorkerCrashed",
    "auto_workers", "limit_malloc_arenas", "will_parse", "work_feed",
]

logger = logging.getLogger(__name__)

# Below this many due feeds, starting worker processes costs more than it saves.
AUTO_MIN_FEEDS = 20
AUTO_MAX_WORKERS = 4
# Each worker process holds about 35 MB: on a machine this small, memory matters more than speed.
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


def will_parse(feeds: Sequence[Mapping[str, Any]]) -> bool:
    """Whether most of these feeds will answer with a body to parse: they have no validators (ETag,
    Last-Modified) to answer "not modified" to, as on a first crawl or from a server that sends none."""
    fresh = sum(1 for feed in feeds if not feed.get("etag") and not feed.get("last_modified"))
    return fresh * 2 >= len(feeds) > 0


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

    Each worker is a plain child process (`python -c ...`, see `_serve`) fed through its stdin and
    answering on its stdout: no multiprocessing primitives, so no resource-tracker process (12 MB) and
    no manager or feeder thread. Jobs wait in one queue; each worker holds DEPTH of them (the one it
    parses and the next, already in its pipe), refilled by the thread that reads its answers.
    """

    def __init__(self, workers: int, start_after: int = 3) -> None:
        self.workers = workers
        self.start_after = start_after
        self._procs: list[_Worker] = []
        self._queue: deque[_Task] = deque()  # jobs no worker holds yet
        self._lock = threading.Lock()  # the queue and each worker's jobs: reader threads refill them
        self._parsed = 0
        self._in_flight = 0  # jobs handed to the worker processes and not answered yet
        self._failed_start = False
        # Feeds in flight when a worker died are parsed again one at a time, in one spare process.
        self._alone: _Worker | None = None
        self._alone_lock = asyncio.Lock()

    def start(self) -> None:
        """Start the processes (they import the parsers) without waiting for them."""
        if not self.workers:
            return
        try:
            with self._lock:
                while len(self._procs) < self.workers:
                    self._procs.append(_Worker(self))
        except (OSError, ValueError, subprocess.SubprocessError) as exc:  # no processes here (sandbox, limits)
            self._give_up(f"worker processes cannot start ({exc})")

    @property
    def ready(self) -> bool:
        if self._failed_start:
            self._give_up("worker processes died while starting")
            return False
        return any(worker.ready for worker in self._procs)

    @property
    def started(self) -> bool:
        """Whether worker processes are running (or starting)."""
        return bool(self._procs)

    def pids(self) -> list[int]:
        """The worker processes' ids."""
        return [worker.process.pid for worker in self._procs]

    async def run(self, job: FeedJob) -> tuple[list[Routed], FeedFetch]:
        if not self.workers or job.response.status != 200:
            return work_feed(job)  # nothing to parse, or no pool: no pickling either
        self._parsed += 1
        if len(self._procs) < self.workers and self._parsed >= self.start_after:
            self.start()  # the first time, or a fresh process after a crash
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
        task = _Task(job)
        with self._lock:
            self._queue.append(task)
            self._dispatch()
        try:
            return await asyncio.wrap_future(task.future)
        except _WorkerDied:
            pass
        if not self.workers:  # the pool gave up meanwhile
            return work_feed(job)
        # A worker died with this feed in its hands, not necessarily because of it: parse it again in
        # a process of its own, so that only the feed that kills a worker is recorded as failed.
        async with self._alone_lock:
            alone = self._alone
            if alone is None or not alone.alive:
                alone = self._alone = _Worker(self)  # not in _procs: given no queued jobs
            task = _Task(job)
            with self._lock:
                alone.take(task)
            try:
                return await asyncio.wrap_future(task.future)
            except _WorkerDied:
                self._alone = None
                raise WorkerCrashed(
                    "the parser process died on this feed (a crash in a parser, or the out-of-memory killer)"
                ) from None

    def close(self) -> None:
        with self._lock:
            workers = [*self._procs, *([self._alone] if self._alone is not None else [])]
            self._procs, self._alone = [], None
            queued, self._queue = list(self._queue), deque()
        for task in queued:
            task.future.cancel()
        for worker in workers:
            worker.close()

    def _dispatch(self) -> None:
        """Hand queued jobs to ready workers with room, the least busy first. Holds self._lock."""
        while self._queue:
            # _exited takes a dead worker out of _procs under this lock: every one here is alive
            room = [w for w in self._procs if w.ready and len(w.sent) < DEPTH]
            if not room:
                return
            min(room, key=lambda w: len(w.sent)).take(self._queue.popleft())

    # Called from a worker's reader thread:

    def _worker_ready(self, worker: _Worker) -> None:
        with self._lock:
            worker.ready = True
            self._dispatch()

    def _answered(self, worker: _Worker, ok: bool, value: Any) -> None:
        with self._lock:
            task = worker.sent.popleft()
            self._dispatch()
        _settle(task, ok, value)

    def _exited(self, worker: _Worker) -> None:
        with self._lock:
            worker.alive = False
            lost = list(worker.sent)
            worker.sent.clear()
            if worker in self._procs:
                self._procs.remove(worker)
                if not worker.ready:
                    self._failed_start = True
                if not self._procs:  # nobody left to take the queue
                    lost += self._queue
                    self._queue.clear()
        for task in lost:
            _settle(task, False, _WorkerDied())

    def _give_up(self, why: str) -> None:
        logger.warning("%s: parsing in the crawl process instead", why)
        self.workers = 0
        self._failed_start = False
        self.close()


# Each worker holds this many jobs: the one it parses and the next, already in its pipe, so it never
# waits for the crawl process between two feeds.
DEPTH = 2
# A feed's job or result goes through its pipe without waiting for the other side to read (Linux).
PIPE_BYTES = 1024 * 1024
_BOOT = "import json, sys; sys.path[:] = json.loads(sys.argv[1]); from crawler.work import _serve; _serve()"


class _WorkerDied(Exception):
    """The worker process ended with this job in its hands."""


class _Task:
    __slots__ = ("future", "job")

    def __init__(self, job: FeedJob) -> None:
        self.job = job
        self.future: Future[tuple[list[Routed], FeedFetch]] = Future()


def _settle(task: _Task, ok: bool, value: Any) -> None:
    if task.future.done():  # cancelled by close()
        return
    if ok:
        task.future.set_result(value)
    else:
        task.future.set_exception(value)


def _worker_command() -> list[str]:
    if not sys.executable:
        raise OSError("no Python executable to start")
    # The crawl's own sys.path: the worker imports the same modules, however the crawl was started.
    return [sys.executable, "-c", _BOOT, json.dumps(sys.path)]


class _Worker:
    """One worker process: jobs go in on its stdin (a writer thread), answers come out on its stdout
    (a reader thread, which settles each job in order and hands the worker the next)."""

    def __init__(self, pool: ParsePool) -> None:
        self.pool = pool
        self.process = subprocess.Popen(_worker_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        assert self.process.stdin is not None and self.process.stdout is not None
        self._stdin = self.process.stdin
        self._stdout = self.process.stdout
        _widen_pipe(self._stdin.fileno())
        _widen_pipe(self._stdout.fileno())
        self.sent: deque[_Task] = deque()  # jobs it holds, in the order it answers them
        self.ready = False
        self.alive = True
        self._out: SimpleQueue[bytes | None] = SimpleQueue()
        name = f"feedloom-worker-{self.process.pid}"
        self._writer = threading.Thread(target=self._write, name=f"{name}-in", daemon=True)
        self._reader = threading.Thread(target=self._read, name=f"{name}-out", daemon=True)
        self._writer.start()
        self._reader.start()

    def take(self, task: _Task) -> None:
        """Send it a job. Holds the pool's lock (the job is pickled here, so that one that cannot be
        fails alone)."""
        try:
            payload = pickle.dumps(task.job, pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - whatever it is, it is this feed's error alone
            _settle(task, False, exc)
            return
        self.sent.append(task)
        self._out.put(payload)

    def close(self, timeout: float = 30.0) -> None:
        """Let it finish what it holds and end; kill it if it will not."""
        self._out.put(None)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout)
        self._writer.join(timeout)

    def _write(self) -> None:
        try:
            while (payload := self._out.get()) is not None:
                _send(self._stdin, payload)
        except (OSError, ValueError):
            pass  # the process has gone: the reader sees its end
        finally:
            try:
                self._stdin.close()  # the worker reads the end of its jobs, and exits
            except OSError:
                pass

    def _read(self) -> None:
        pool = self.pool
        try:
            while (message := _receive(self._stdout)) is not None:
                if not message:
                    pool._worker_ready(self)
                    continue
                try:
                    ok, value = pickle.loads(message)
                except Exception as exc:  # noqa: BLE001 - an exception its class cannot rebuild here
                    ok, value = False, RuntimeError(f"a worker's answer could not be read: {exc}")
                pool._answered(self, ok, value)
        except (OSError, ValueError):
            pass
        finally:
            self._out.put(None)
            self.process.wait()  # no zombie
            pool._exited(self)


def _widen_pipe(fd: int) -> None:
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, AttributeError, OSError):
        pass  # not Linux, or above /proc/sys/fs/pipe-max-size: the default pipe works, only slower
