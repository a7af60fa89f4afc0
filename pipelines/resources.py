"""Where feedloom's data files are: the checkout's data/, or the copy a regular install carries as feedloom_data."""

from __future__ import annotations

from functools import cache
from pathlib import Path

# pyproject.toml installs data/ as this package (package-dir), beside crawler/ and pipelines/.
INSTALLED_NAME = "feedloom_data"


@cache
def data_dir() -> Path:
    """The folder holding demo/, sites/, html_rules.toml, metadata.yml and datasette/plugins/.

    Looked up beside the code that runs: feedloom_data/ there is a regular install (pip install ., a wheel,
    pipx); else data/ there is a checkout or an editable install, whose edits count at once. In the zipped
    egg scrapyd runs neither is a folder, and callers report the missing files. Not importlib.resources:
    from that egg it would find an editable install's data/, and in Python 3.11 it fails on that
    editable install's feedloom_data, a namespace package.
    """
    beside = Path(__file__).resolve().parent.parent
    installed = beside / INSTALLED_NAME
    return installed if installed.is_dir() else beside / "data"
