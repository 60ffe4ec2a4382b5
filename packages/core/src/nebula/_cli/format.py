"""Printing records: aligned tables (or JSON) for the state commands."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ",".join(f"{k}={fmt_amount(v, k)}" for k, v in sorted(value.items()))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def fmt_amount(value: Any, name: str) -> str:
    if not isinstance(value, (int, float)):
        return str(value)
    if name in ("memory", "object_store_memory"):
        return f"{value / 2**30:.1f}GiB"
    return f"{value:g}"


def fmt_bytes(size: float | None) -> str:
    if size is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def print_table(
    records: Sequence[dict[str, Any]], columns: Sequence[str], out: TextIO = sys.stdout
) -> None:
    rows = [[cell(record.get(column)) for column in columns] for record in records]
    widths = [max([len(c), *(len(row[i]) for row in rows)]) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip(), file=out)
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip(), file=out)


def print_json(value: Any, out: TextIO = sys.stdout) -> None:
    print(json.dumps(value, indent=2, default=str), file=out)
