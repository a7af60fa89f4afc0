"""The per-folder table: files, checks, passed, failed, xfailed, for our normalized fields and for feedparser passthrough."""

from __future__ import annotations

import fnmatch
import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.conformance.known_failures import KNOWN_FAILURES
from tests.conformance.model import OURS, PASSTHROUGH, FileReport, folder_of

PROPERTY = "conformance"


def is_known(relpath: str, name: str) -> bool:
    return any(k.path == relpath and fnmatch.fnmatchcase(name, k.check) for k in KNOWN_FAILURES)


def outcome(relpath: str, ok: bool, name: str) -> str:
    if ok:
        return "passed"
    return "xfailed" if is_known(relpath, name) else "failed"


def encode(report: FileReport) -> str:
    """What one per-file test hands to the summary (through pytest's user_properties, so also from xdist workers)."""
    return json.dumps(report.as_dict(), ensure_ascii=False)


@dataclass
class Tally:
    files: Counter[str] = field(default_factory=Counter)
    counts: dict[tuple[str, str], Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    per_entry_seconds: list[float] = field(default_factory=list)  # one value per entry: its file's time / entries
    file_seconds: list[float] = field(default_factory=list)
    crashed: list[str] = field(default_factory=list)

    def add(self, data: Mapping[str, Any]) -> None:
        relpath = data["relpath"]
        folder = folder_of(relpath)
        self.files[folder] += 1
        if data.get("crashed"):
            self.crashed.append(f"{relpath}: {data['crashed']}")
            return
        for name, ok, kind in data["checks"]:
            self.counts[(folder, kind)][outcome(relpath, ok, name)] += 1
        self.file_seconds.append(data["seconds"])
        if data["entries"]:
            self.per_entry_seconds.extend([data["seconds"] / data["entries"]] * data["entries"])

    def add_all(self, items: Iterable[Mapping[str, Any]]) -> Tally:
        for item in items:
            self.add(item)
        return self

    def total(self, kind: str) -> Counter[str]:
        out: Counter[str] = Counter()
        for (_, k), counter in self.counts.items():
            if k == kind:
                out.update(counter)
        return out

    def rate(self, kind: str) -> float:
        total = self.total(kind)
        checks = sum(total.values())
        return total["passed"] / checks if checks else 1.0

    def median_ms_per_entry(self) -> float:
        return statistics.median(self.per_entry_seconds) * 1000 if self.per_entry_seconds else 0.0

    def table(self) -> str:
        """A Markdown table, one row per folder; rates over checks = passed + failed + xfailed."""
        head = ("| folder | files | checks | passed | failed | xfailed | rate | passthrough checks | passed | failed | xfailed |\n"
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")  # fmt: skip
        rows = [head]
        for folder in sorted(self.files):
            ours = self.counts.get((folder, OURS), Counter())
            passthrough = self.counts.get((folder, PASSTHROUGH), Counter())
            rows.append(_row(folder, self.files[folder], ours, passthrough))
        rows.append(_row("**all**", sum(self.files.values()), self.total(OURS), self.total(PASSTHROUGH)))
        return "\n".join(rows)

    def headline(self) -> str:
        ours, passthrough = self.total(OURS), self.total(PASSTHROUGH)
        both = ours + passthrough
        lines = [
            (
                f"our normalized fields: {ours['passed']}/{sum(ours.values())} checks met ({self.rate(OURS):.2%}), "
                f"{ours['failed']} failed, {ours['xfailed']} known failures"
            ),
            f"feedparser passthrough: {passthrough['passed']}/{sum(passthrough.values())} ({self.rate(PASSTHROUGH):.2%})",
            f"all checks: {both['passed']}/{sum(both.values())} ({both['passed'] / max(1, sum(both.values())):.2%})",
            f"files: {sum(self.files.values())}, crashed or hung: {len(self.crashed)}",
            (
                f"median parse + normalize time per entry: {self.median_ms_per_entry():.2f} ms "
                f"over {len(self.per_entry_seconds)} entries"
            ),
        ]
        return "\n".join(lines + [f"CRASHED {c}" for c in self.crashed])


def _row(folder: str, files: int, ours: Counter[str], passthrough: Counter[str]) -> str:
    checks = sum(ours.values())
    rate = f"{ours['passed'] / checks:.1%}" if checks else "–"
    pt = sum(passthrough.values())
    pt_cells = f"{pt} | {passthrough['passed']} | {passthrough['failed']} | {passthrough['xfailed']}" if pt else "– | – | – | –"
    return f"| {folder} | {files} | {checks} | {ours['passed']} | {ours['failed']} | {ours['xfailed']} | {rate} | {pt_cells} |"


def from_pytest_reports(reports: Iterable[Any]) -> list[dict[str, Any]]:
    """The per-file results the conformance tests attached to their reports."""
    out = []
    for report in reports:
        if getattr(report, "when", None) != "call":
            continue
        for key, value in getattr(report, "user_properties", ()):
            if key == PROPERTY:
                out.append(json.loads(value))
    return out
