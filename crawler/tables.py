"""Plain-text tables for the terminal that line up with Chinese (double-width) text."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 0 if unicodedata.combining(ch) else 1 for ch in text)


def clip(text: str, width: int) -> str:
    if display_width(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        w = display_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], max_width: int = 48) -> str:
    cells = [[clip(_cell(row.get(col)), max_width) for col in columns] for row in rows]
    widths = [max([display_width(col)] + [display_width(r[i]) for r in cells]) for i, col in enumerate(columns)]
    lines = ["  ".join(_pad(col, widths[i]) for i, col in enumerate(columns)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for r in cells:
        lines.append("  ".join(_pad(c, widths[i]) for i, c in enumerate(r)).rstrip())
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return " ".join(str(value).split())


def _pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))
