"""What a worker process runs: one feed's parse and normalization (`work_feed`), and the loop that
answers the crawl process's jobs (`_serve`).

A module of its own, apart from the pool in `crawler.workers`, so that a worker process imports only
what parsing needs: the pool's asyncio (with ssl) added about 3 MB to every worker (35.6 against
38.6 MB at its peak over 30 feeds of the benchmark corpus).
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crawler.items import Entry, EntryItem, FeedFetch, RawEntry, evolve
from crawler.outcome import Response, decide_feed_response
from crawler.pages import feed_side_hash, page_reason
from crawler.recipes import Recipe, recipe_for

if TYPE_CHECKING:  # the html module loads with the first feed to normalize, not with the crawl
    from pipelines.html import HtmlRules

logger = logging.getLogger(__name__)

_HEADER = struct.Struct("!Q")  # each message: its length, then its pickle; a worker's first is empty (ready)


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
        item = evolve(item, feed_hash=feed_side_hash(raw))
        if reason is None and (entry := normalized.entry()) is not None:
            slim = raw if job.keep_raw else RawEntry(guid=raw.guid, link=raw.link)
            item = evolve(item, raw=slim, entry=entry, normalized=True)
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


def _send(out: Any, payload: bytes) -> None:
    for data in (_HEADER.pack(len(payload)), payload):
        view = memoryview(data)
        while view:
            view = view[out.write(view) :]


def _receive(source: Any) -> bytearray | None:
    """The next message, or None at the end of the stream."""
    header = _read_exactly(source, _HEADER.size)
    if header is None:
        return None
    return _read_exactly(source, _HEADER.unpack(header)[0])


def _read_exactly(source: Any, size: int) -> bytearray | None:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        count = source.readinto(view[got:])
        if not count:
            return None
        got += count
    return buffer


def _serve() -> None:
    """A worker process's life: import the parsers, say so, then answer each job until the crawl
    process closes the pipe (or is gone: a SIGKILLed crawl leaves no worker behind)."""
    # Ctrl-C reaches the whole process group: the crawl process shuts the pool down in order, and a
    # worker must not die first with a KeyboardInterrupt traceback on the user's terminal. The same for
    # SIGTERM, which `systemctl stop` (and some cron timeouts) send to every process of the crawl: a
    # worker that died first would leave the feeds in its hands recorded as parser crashes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # The pipes are for jobs and answers alone: whatever a library prints goes to stderr.
    jobs = os.fdopen(os.dup(0), "rb", buffering=0)
    answers = os.fdopen(os.dup(1), "wb", buffering=0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    _warm_up()
    try:
        _send(answers, b"")
        while (message := _receive(jobs)) is not None:
            try:
                answer = pickle.dumps((True, work_feed(pickle.loads(message))), pickle.HIGHEST_PROTOCOL)
            except Exception as exc:  # noqa: BLE001 - the feed's error goes back to the crawl process
                answer = _error_answer(exc)
            _send(answers, answer)
    except BrokenPipeError:
        pass  # the crawl process is gone


def _error_answer(exc: Exception) -> bytes:
    try:
        return pickle.dumps((False, exc), pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - an exception that cannot be pickled: its text, then
        return pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")), pickle.HIGHEST_PROTOCOL)


def _warm_up() -> None:
    # Import the heavy modules before the first feed arrives.
    import pipelines.html
    import pipelines.metadata
    import pipelines.stages  # noqa: F401 - imported for its side effect: loaded before the first feed
