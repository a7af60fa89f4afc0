"""Every command, option and setting a user can use is documented."""

from __future__ import annotations

import re

import click
import pytest

from crawler import settings
from crawler.cli import main
from tests.conftest import ROOT

DOCS = "\n".join(p.read_text(encoding="utf-8") for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])


def all_commands():
    ctx = click.Context(main)
    out = []

    def walk(group, prefix):
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            out.append((f"{prefix} {name}".strip(), command))
            if isinstance(command, click.Group):
                walk(command, f"{prefix} {name}")

    walk(main, "")
    return out


@pytest.mark.parametrize("name, command", all_commands(), ids=lambda v: v if isinstance(v, str) else "")
def test_command_and_options_are_documented(name, command):
    assert f"feedloom {name}" in DOCS, f"`feedloom {name}` is not in README.md or docs/"
    assert command.help, f"`feedloom {name}` has no --help text"
    for param in command.params:
        if isinstance(param, click.Option):
            longest = max(param.opts, key=len)
            if longest in ("--help",):
                continue
            assert re.search(re.escape(longest) + r"\b", DOCS), f"`feedloom {name} {longest}` is not documented"


@pytest.mark.parametrize("name", [n for n in dir(settings) if n.startswith("FEEDLOOM_")])
def test_setting_is_documented(name):
    assert f"`{name}`" in (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")


def test_readme_quick_start_has_the_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = re.findall(r"^make \w+", quick, flags=re.M)
    assert commands == ["make demo", "make test"]
