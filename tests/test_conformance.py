"""Conformance against the public corpus ($FEEDLOOM_CORPUS): every file goes through parse + normalize without
an exception or a hang, and our normalized output meets the expectations the corpus carries (docs/conformance.md)."""

from __future__ import annotations

import fnmatch
import json
import os
from pathlib import Path

import pytest

from tests.conformance import check_file, list_files
from tests.conformance.known_failures import KNOWN_FAILURES
from tests.conformance.summary import PROPERTY, encode, is_known
from tests.conformance.woshipm import store_checks

pytestmark = pytest.mark.corpus
NO_CORPUS = "<FEEDLOOM_CORPUS not set>"
PER_FILE_SECONDS = 20


def _corpus_files() -> list[str]:
    # Collection needs the file names; the tests read the files through the `corpus` fixture,
    # which skips (or, under CI, fails) when $FEEDLOOM_CORPUS is missing.
    value = os.environ.get("FEEDLOOM_CORPUS")
    return list_files(Path(value)) if value and Path(value).is_dir() else [NO_CORPUS]


@pytest.mark.timeout(PER_FILE_SECONDS)
@pytest.mark.parametrize("relpath", _corpus_files())
def test_corpus_file(corpus: Path, relpath: str, record_property: pytest.RecordProperty) -> None:
    try:
        report = check_file(corpus, relpath)
    except Exception as exc:
        record_property(PROPERTY, json.dumps({"relpath": relpath, "crashed": f"{type(exc).__name__}: {exc}"[:300]}))
        raise
    record_property(PROPERTY, encode(report))
    unexpected = [c for c in report.checks if not c.ok and not is_known(relpath, c.name)]
    assert not unexpected, "\n".join(f"{c.kind}: {c.name}: {c.detail}" for c in unexpected)


@pytest.mark.parametrize(
    "known",
    [pytest.param(k, id=f"{k.path}::{k.check}", marks=pytest.mark.xfail(strict=True, reason=k.reason, raises=AssertionError)) for k in KNOWN_FAILURES],
)
def test_known_failure(corpus: Path, known) -> None:  # noqa: ANN001 - a KnownFailure
    report = check_file(corpus, known.path)
    matching = [c for c in report.checks if fnmatch.fnmatchcase(c.name, known.check)]
    if not matching:
        raise LookupError(f"stale known failure: no check of {known.path} matches {known.check!r}")
    failing = [c for c in matching if not c.ok]
    assert not failing, "\n".join(f"{c.name}: {c.detail}" for c in failing)


def test_rsshub_woshipm_ingest_gives_seven_entries(corpus: Path) -> None:
    facts = json.loads((corpus / "rsshub-woshipm" / "EXPECTATIONS.json").read_bytes())
    checks = {c.name: c for c in store_checks(corpus, facts)}
    unique = checks["store: unique entries after both feeds"]
    assert unique.ok, unique.detail
    assert checks["store: tracking parameters removed from the link"].ok
