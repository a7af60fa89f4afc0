"""crawler.download: the stack Scrapy's TLS modules see while they load."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

from crawler.download import _frames, _stack_without_source

ROOT = Path(__file__).resolve().parent.parent


def _both() -> tuple[list[inspect.FrameInfo], list[inspect.FrameInfo]]:
    return inspect.stack(), _frames()


def test_frames_are_inspect_stacks_frames_without_their_source():
    full, light = _both()
    # each list begins with _both's own frame, then its callers out to the interpreter's first
    assert [info.frame for info in light] == [info.frame for info in full]
    assert [(i.filename, i.lineno, i.function) for i in light] == [(i.filename, i.lineno, i.function) for i in full]
    assert all(info.code_context is None and info.index is None for info in light)
    assert inspect.getmodule(light[1].frame) is inspect.getmodule(full[1].frame)


def test_inspect_stack_is_itself_again_after_the_block_even_after_an_error():
    before = inspect.stack
    try:
        with _stack_without_source():
            assert inspect.stack is _frames
            raise RuntimeError("an import that failed")
    except RuntimeError:
        pass
    assert inspect.stack is before


def test_scrapys_deprecated_tls_aliases_still_know_their_modules():
    # In a fresh interpreter, so that the TLS modules load under the block and nowhere else.
    code = (
        "import crawler.download, inspect\n"
        "from scrapy.core.downloader import contextfactory as c, tls as t\n"
        "print(t.ScrapyClientTLSOptions.__module__, c.ScrapyClientContextFactory.__module__,"
        " c.AcceptableProtocolsContextFactory.__module__, inspect.stack.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.split() == [
        "scrapy.core.downloader.tls", "scrapy.core.downloader.contextfactory",
        "scrapy.core.downloader.contextfactory", "inspect",
    ]
