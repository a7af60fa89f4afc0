"""One crawl per database at a time: an advisory lock file beside it, released by the kernel if we die."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


class CrawlLocked(RuntimeError):
    """Another crawl holds this database."""


def acquire_lock(db_path: str, wait_s: float = 10.0) -> IO[str]:
    """Take the database's crawl lock, waiting up to wait_s; the returned handle holds it until released."""
    lock_path = Path(str(db_path) + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(lock_path, "a+")  # noqa: SIM115 - the open handle is the lock: it outlives this call until release_lock
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                handle.close()
                raise CrawlLocked(
                    f"another crawl is running on {db_path} ({holder}); waited {wait_s:g}s, not starting a second one"
                ) from None
            time.sleep(0.2)
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    return handle


def release_lock(handle: IO[str]) -> None:
    try:
        fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()


@contextmanager
def crawl_lock(db_path: str, wait_s: float = 10.0) -> Iterator[None]:
    handle = acquire_lock(db_path, wait_s)
    try:
        yield
    finally:
        release_lock(handle)
