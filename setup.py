"""Builds the egg `scrapyd-deploy` uploads; every other build (pip install, wheels) reads pyproject.toml alone."""

from __future__ import annotations

import sys
import tomllib
from typing import Any

from setuptools import find_packages, setup
from setuptools.dist import Distribution

# What scrapyd-deploy runs: `setup.py clean -a`, then `setup.py bdist_egg` (bdist_uberegg with dependencies).
EGG_COMMANDS = frozenset({"clean", "bdist_egg", "bdist_uberegg"})


class EggDistribution(Distribution):
    """Leaves pyproject.toml unread: its [project] table would drop the entry point scrapyd looks up,
    and a setuptools older than 77 (a Python 3.11 venv has 65) rejects its `license` string."""

    def parse_config_files(self, filenames: Any = None, ignore_option_errors: bool = False) -> None:
        super().parse_config_files(filenames=[], ignore_option_errors=ignore_option_errors)


if EGG_COMMANDS.intersection(sys.argv[1:]):
    with open("pyproject.toml", "rb") as handle:
        project = tomllib.load(handle)["project"]
    setup(
        distclass=EggDistribution,
        name=project["name"],
        version=project["version"],
        # Code only, no feedloom_data: scrapyd imports the egg as a zip file, where the recipes, rules and demo
        # could not be read as files; a job takes its recipes from FEEDLOOM_SITES_DIR (docs/usage.md, scrapyd).
        packages=find_packages(include=["crawler", "crawler.*", "pipelines", "pipelines.*"]),
        # scrapyd reads the settings module from this entry point.
        entry_points={"scrapy": ["settings = crawler.settings"]},
    )
else:
    setup()
