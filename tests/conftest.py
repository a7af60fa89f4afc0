"""Shared fixtures: the demo site, a database the demo crawl produced, the corpus path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

import pipelines  # noqa: F401 - first: the tests use the SQLite feedloom picks (pipelines.sqlitelib)

ROOT = Path(__file__).resolve().parent.parent
DEMO_SITE = ROOT / "data" / "demo"


def run_feedloom(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run the feedloom command in a fresh process (Scrapy's reactor starts once per process)."""
    return subprocess.run(
        [sys.executable, "-m", "crawler.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,  # the callers assert on the return code, with the output as the message
    )


def copy_project(
    target: Path, files: tuple[str, ...], folders: tuple[str, ...], ignore: Callable[[str, list[str]], Iterable[str]] | None = None
) -> Path:
    """A copy of some of the checkout's top-level files and folders in target (created), for builds that
    must not see the rest of it (virtualenv, databases, caches); ignore defaults to __pycache__."""
    target.mkdir()
    for name in files:
        shutil.copy2(ROOT / name, target / name)
    for name in folders:
        shutil.copytree(ROOT / name, target / name, ignore=ignore or shutil.ignore_patterns("__pycache__"))
    return target


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database produced by `feedloom demo` (a real crawl of the bundled demo site)."""
    path = tmp_path_factory.mktemp("demo") / "feeds.db"
    result = run_feedloom("demo", "--db", str(path))
    assert result.returncode == 0, result.stderr + result.stdout
    return path


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The public test corpus ($FEEDLOOM_CORPUS). Missing: a skip on a user's clone, a failure in CI."""
    value = os.environ.get("FEEDLOOM_CORPUS")
    if not value or not Path(value).is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"FEEDLOOM_CORPUS is {value!r}, not a folder: CI must have the corpus (.ci/run sets it)")
        pytest.skip("FEEDLOOM_CORPUS is not set: the public corpus is not part of a user's clone")
    return Path(value)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The conformance table (tests/test_conformance.py), so that CI logs show the pass rate per corpus folder."""
    from tests.conformance.summary import Tally, from_pytest_reports

    results = from_pytest_reports(r for reports in terminalreporter.stats.values() for r in reports)
    if not results:
        return
    tally = Tally().add_all(results)
    terminalreporter.write_sep("=", "conformance against the public corpus")
    terminalreporter.write_line(tally.table())
    terminalreporter.write_line(tally.headline())
