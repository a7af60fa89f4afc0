"""scrapyd: `scrapyd-deploy` uploads the project by scrapy.cfg's [deploy] section, and a scheduled `feeds` job crawls the demo."""

from __future__ import annotations

import configparser
import json
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from crawler.testserver import FixtureServer
from tests.conftest import DEMO_SITE, ROOT, copy_project, run_feedloom

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
# What `scrapyd-deploy` needs to build the egg, copied so that its build/ and egg-info stay out of the checkout.
PROJECT_FILES = ("scrapy.cfg", "setup.py", "pyproject.toml", "README.md")
PROJECT_PACKAGES = ("crawler", "pipelines")
JOB_TIMEOUT = 60.0
NO_RECIPES_WARNING = ".egg/data/sites: no site recipes beside the code"
# No proxy from the environment between the test and its own servers on 127.0.0.1.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Scrapyd:
    """A running scrapyd: its base URL and the folder its job logs go to."""

    url: str
    logs_dir: Path

    def get(self, path: str, **params: str) -> dict[str, Any]:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with OPENER.open(f"{self.url}{path}{query}", timeout=10) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def post(self, path: str, fields: list[tuple[str, str]]) -> dict[str, Any]:
        data = urllib.parse.urlencode(fields).encode()
        with OPENER.open(f"{self.url}{path}", data=data, timeout=10) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(home: Path) -> dict[str, str]:
    # HOME and XDG_CONFIG_HOME in tmp: a user's ~/.scrapyd.conf or ~/.scrapy.cfg must not steer the test.
    return {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}


def _wait_until_up(server: Scrapyd, process: subprocess.Popen[bytes], output: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"scrapyd exited with {process.returncode}:\n{output.read_text(errors='replace')}")
        try:
            if server.get("daemonstatus.json")["status"] == "ok":
                return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"scrapyd did not answer within 30 s:\n{output.read_text(errors='replace')}")


@pytest.fixture(scope="module")
def scrapyd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scrapyd]:
    home = tmp_path_factory.mktemp("scrapyd")
    port = _free_port()
    (home / "scrapyd.conf").write_text(
        "[scrapyd]\n"
        "bind_address = 127.0.0.1\n"
        f"http_port = {port}\n"
        f"eggs_dir = {home / 'eggs'}\n"
        f"logs_dir = {home / 'logs'}\n"
        f"dbs_dir = {home / 'dbs'}\n"
        f"items_dir = {home / 'items'}\n"
        "poll_interval = 0.2\n",
        encoding="utf-8",
    )
    output = home / "scrapyd.out"
    server = Scrapyd(url=f"http://127.0.0.1:{port}/", logs_dir=home / "logs")
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [str(BIN / "scrapyd")], cwd=home, env=_env(home), stdout=sink, stderr=subprocess.STDOUT
        )
        try:
            _wait_until_up(server, process, output)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def deployed(scrapyd: Scrapyd, tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    """`scrapyd-deploy test` run in a copy of the project; the target adds only the url to scrapy.cfg's [deploy]."""
    home = tmp_path_factory.mktemp("deploy")
    project = copy_project(home / "feedloom", PROJECT_FILES, PROJECT_PACKAGES)
    # scrapyd-client reads $XDG_CONFIG_HOME/scrapy.cfg too; a [deploy:NAME] target inherits [deploy]'s keys.
    (home / ".config").mkdir()
    (home / ".config" / "scrapy.cfg").write_text(f"[deploy:test]\nurl = {scrapyd.url}\n", encoding="utf-8")
    return subprocess.run(
        [str(BIN / "scrapyd-deploy"), "test"],
        cwd=project,
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,  # the tests assert on the return code, with the output as the message
    )


def _deploy_project() -> str:
    config = configparser.ConfigParser()
    config.read(ROOT / "scrapy.cfg", encoding="utf-8")
    return config["deploy"]["project"]


def _run_job(scrapyd: Scrapyd, settings: dict[str, str]) -> tuple[dict[str, Any], str]:
    """Schedule the feeds spider, wait for scrapyd to list it finished; the job and its log."""
    project = _deploy_project()
    fields = [("project", project), ("spider", "feeds"), *(("setting", f"{k}={v}") for k, v in settings.items())]
    scheduled = scrapyd.post("schedule.json", fields)
    assert scheduled["status"] == "ok", scheduled
    job_id = scheduled["jobid"]
    deadline = time.monotonic() + JOB_TIMEOUT
    while time.monotonic() < deadline:
        finished = [job for job in scrapyd.get("listjobs.json", project=project)["finished"] if job["id"] == job_id]
        if finished:
            log = scrapyd.logs_dir / project / "feeds" / f"{job_id}.log"
            return finished[0], log.read_text(encoding="utf-8", errors="replace")
        time.sleep(0.3)
    pytest.fail(f"job {job_id} did not finish within {JOB_TIMEOUT:.0f} s")


def _stored(db: Path) -> dict[str, Any]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        crawls = [dict(row) for row in conn.execute("SELECT * FROM crawls")]
        methods = [row[0] or "" for row in conn.execute("SELECT page_method FROM entries")]
    return {"crawls": crawls, "methods": methods}


def test_scrapy_cfg_deploy_section_names_the_project() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / "scrapy.cfg", encoding="utf-8")
    assert config["deploy"]["project"] == "feedloom"
    assert config["deploy"]["url"] == "http://127.0.0.1:6800/"
    assert config["settings"]["default"] == "crawler.settings"


def test_deploy_uploads_the_feeds_spider(scrapyd: Scrapyd, deployed: subprocess.CompletedProcess[str]) -> None:
    assert deployed.returncode == 0, deployed.stderr + deployed.stdout
    assert json.loads(deployed.stdout)["status"] == "ok"
    assert scrapyd.get("listprojects.json")["projects"] == ["feedloom"]
    assert scrapyd.get("listspiders.json", project="feedloom")["spiders"] == ["feeds"]


def _crawl_demo(scrapyd: Scrapyd, db: Path, **extra: str) -> tuple[dict[str, Any], str]:
    """Import the demo's feed list into `db` and crawl it as a scrapyd job; the stored result and the job's log."""
    imported = run_feedloom("import", str(DEMO_SITE / "feeds.toml"), "--db", str(db))
    assert imported.returncode == 0, imported.stderr
    with FixtureServer(DEMO_SITE) as site:
        settings = {
            "FEEDLOOM_DB": str(db),
            "FEEDLOOM_ALLOW_PRIVATE": "1",
            "FEEDLOOM_PROXY": site.url,
            "FEEDLOOM_ALL_FEEDS": "1",
            **extra,
        }
        job, log = _run_job(scrapyd, settings)
    assert job["spider"] == "feeds"
    return _stored(db), log


@pytest.fixture(scope="module")
def default_job(
    scrapyd: Scrapyd, deployed: subprocess.CompletedProcess[str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], str]:
    assert deployed.returncode == 0, deployed.stderr + deployed.stdout
    return _crawl_demo(scrapyd, tmp_path_factory.mktemp("job") / "feeds.db")


@pytest.fixture(scope="module")
def recipes_job(
    scrapyd: Scrapyd, deployed: subprocess.CompletedProcess[str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], str]:
    assert deployed.returncode == 0, deployed.stderr + deployed.stdout
    db = tmp_path_factory.mktemp("job") / "feeds.db"
    return _crawl_demo(scrapyd, db, FEEDLOOM_SITES_DIR=str(ROOT / "data" / "sites"))


def test_job_stores_the_demo_entries_and_a_finished_crawl(default_job: tuple[dict[str, Any], str]) -> None:
    stored, log = default_job
    assert len(stored["methods"]) == 15, log[-3000:]
    assert [(c["status"], c["entries_new"], c["feeds_failed"]) for c in stored["crawls"]] == [("finished", 15, 1)]


def test_job_without_sites_dir_warns_and_uses_no_recipes(default_job: tuple[dict[str, Any], str]) -> None:
    stored, log = default_job
    # The egg path in the warning also proves the job ran the deployed code, not the checkout's.
    assert NO_RECIPES_WARNING in log
    assert [method for method in stored["methods"] if method.startswith("recipe:")] == []


def test_job_with_feedloom_sites_dir_uses_the_recipes(recipes_job: tuple[dict[str, Any], str]) -> None:
    stored, log = recipes_job
    assert "no site recipes" not in log
    assert len(stored["methods"]) == 15, log[-3000:]
    assert "recipe:woshipm" in stored["methods"]
