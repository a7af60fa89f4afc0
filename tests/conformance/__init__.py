"""Conformance against the public corpus: run our parse + normalize on each file and check it against the expectations the corpus carries."""

from __future__ import annotations

from tests.conformance.model import Check, FileReport, folder_of
from tests.conformance.suite import check_file, list_files

__all__ = ["Check", "FileReport", "check_file", "folder_of", "list_files"]
