"""A regular install (a wheel, what `pip install .` and pipx build) carries data/ as feedloom_data, and the code finds it there."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, copy_project

# What the wheel is built from, copied so that the build's build/ and egg-info stay out of the checkout.
PROJECT_FILES = ("pyproject.toml", "setup.py", "README.md")
PROJECT_DIRS = ("crawler", "pipelines", "data")
# What `make demo` leaves in data/: planted in the copy, they must stay out of the wheel.
DATABASE_FILES = ("feeds.db", "feeds.db-wal", "feeds.db-shm")
NOT_PROJECT_FILES = shutil.ignore_patterns("__pycache__", "*.pyc", "*.db", "*.db-*")
# The `license = "MIT"` string of pyproject.toml (PEP 639); the `test` extra installs a setuptools that reads it.
SETUPTOOLS_MAJOR = 77
# Offline (each command adds --no-index), no check for a newer pip, nothing written to the user's pip cache.
PIP = (sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "--no-cache-dir")

PROBE = """
import json, sys
from pathlib import Path
import crawler, pipelines
from crawler import cli_browse
from crawler.recipes import DEFAULT_SITES_DIR, load_recipes
from pipelines.resources import data_dir
print(json.dumps({
    "sys_path": [str(Path(p or ".").resolve()) for p in sys.path],
    "crawler": crawler.__file__,
    "pipelines": pipelines.__file__,
    "data_dir": str(data_dir()),
    "sites_dir": str(DEFAULT_SITES_DIR),
    "recipes": [recipe.name for recipe in load_recipes()],
    "metadata": str(cli_browse.METADATA),
    "plugins": str(cli_browse.PLUGINS),
}))
"""


def _run(args: list[str] | tuple[str, ...], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _data_files(folder: Path) -> set[str]:
    """The files of data/ a wheel must carry: all but databases and Python's caches."""
    return {
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc" and ".db" not in path.name
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built offline with the venv's setuptools from a copy of the checkout with databases in data/."""
    have = version("setuptools")
    if int(have.split(".")[0]) < SETUPTOOLS_MAJOR:
        message = f"setuptools {have} cannot build the wheel (needs >={SETUPTOOLS_MAJOR}): pip install -e '.[test]'"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    home = tmp_path_factory.mktemp("wheel")
    source = copy_project(home / "feedloom", PROJECT_FILES, PROJECT_DIRS, NOT_PROJECT_FILES)
    for name in DATABASE_FILES:
        (source / "data" / name).write_bytes(b"SQLite format 3\0")
    out = home / "dist"
    _run([*PIP, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(out), str(source)], cwd=home)
    (built,) = out.glob("feedloom-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel installed into a folder of its own, as pip installs it into site-packages."""
    target = tmp_path_factory.mktemp("installed")
    _run([*PIP, "install", "--no-deps", "--no-index", "-q", "--target", str(target), str(wheel)], cwd=target)
    return target


def _installed_env(target: Path) -> dict[str, str]:
    """Run the installed copy: PYTHONPATH puts it before the venv's editable install, which stays for the dependencies."""
    return {**os.environ, "PYTHONPATH": str(target)}


@pytest.fixture(scope="module")
def probe(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What the installed code finds, asked from a folder outside the checkout."""
    cwd = tmp_path_factory.mktemp("elsewhere")
    result = _run([sys.executable, "-c", PROBE], cwd=cwd, env=_installed_env(installed))
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def test_wheel_lists_every_package_of_the_checkout(wheel: Path) -> None:
    # pyproject.toml lists the packages (a `find` cannot rename data/ to feedloom_data): a new one must be added there.
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {path.relative_to(ROOT).as_posix() for name in ("crawler", "pipelines") for path in (ROOT / name).rglob("*.py")}
    assert sorted(modules - names) == []


def test_wheel_carries_data_as_feedloom_data_without_databases(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    carried = {name.removeprefix("feedloom_data/") for name in names if name.startswith("feedloom_data/")}
    # Every kind of file data/ holds is in [tool.setuptools.package-data]: one left out would be missing here.
    assert sorted(_data_files(ROOT / "data") - carried) == []
    assert {"demo/feeds.toml", "sites/woshipm.toml", "html_rules.toml", "metadata.yml"} <= carried
    assert [name for name in names if ".db" in name.rsplit("/", 1)[-1]] == []
    assert not any(name.startswith("data/") for name in names)


def test_installed_code_finds_the_installed_data(installed: Path, probe: dict[str, Any]) -> None:
    assert str(ROOT) not in probe["sys_path"]
    assert Path(probe["crawler"]).is_relative_to(installed)
    assert Path(probe["pipelines"]).is_relative_to(installed)
    data = Path(probe["data_dir"])
    assert data == installed / "feedloom_data"
    assert (data / "demo" / "feeds.toml").is_file()
    assert (data / "html_rules.toml").is_file()
    assert Path(probe["sites_dir"]) == data / "sites"
    assert (data / "sites" / "woshipm.toml").is_file()
    assert "woshipm" in probe["recipes"]
    assert Path(probe["metadata"]) == data / "metadata.yml"
    assert (Path(probe["plugins"]) / "feedloom_datasette.py").is_file()


def test_installed_html_rules_path_is_the_installed_copy(installed: Path, tmp_path: Path) -> None:
    code = "from pipelines.html import DEFAULT_RULES_PATH; print(DEFAULT_RULES_PATH)"
    result = _run([sys.executable, "-c", code], cwd=tmp_path, env=_installed_env(installed))
    expected = installed / "feedloom_data" / "html_rules.toml"
    assert result.stdout.strip() == str(expected), 'pipelines/html.py: DEFAULT_RULES_PATH = data_dir() / "html_rules.toml"'


def test_installed_demo_crawls_the_bundled_site(installed: Path, tmp_path: Path) -> None:
    db = tmp_path / "feeds.db"
    result = _run([sys.executable, "-m", "crawler.cli", "demo", "--db", str(db)], cwd=tmp_path, env=_installed_env(installed))
    assert f"entries in {db}" in result.stdout
    with sqlite3.connect(db) as conn:
        methods = [row[0] or "" for row in conn.execute("SELECT page_method FROM entries")]
    assert len(methods) == 15, result.stdout
    assert "recipe:woshipm" in methods  # the installed copy's recipes, found without FEEDLOOM_SITES_DIR
