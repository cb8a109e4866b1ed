"""JSON (the stable, documented form) or a human table on stdout."""

from __future__ import annotations

import json
import sys
from typing import Any, Sequence


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def emit(document: dict[str, Any], fmt: str, headers: Sequence[str], rows: Sequence[Sequence[Any]],
         footer: str = "") -> None:
    if fmt == "json":
        # One write: json.dump would issue a write per token (slow on big reports).
        sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        return
    sys.stdout.write(table(headers, rows) + "\n")
    if footer:
        sys.stdout.write(footer + "\n")
