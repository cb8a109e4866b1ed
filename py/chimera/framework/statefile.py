"""A layer's state on disk: whole files replaced atomically, so a SIGKILL never leaves half of one.

A layer that must come back after a crash (the supervised stack restarts it on
the same ``--state-dir``) writes its record with :func:`write_atomically`: the
new content goes to a temporary file in the same directory, is flushed to the
disk, and replaces the old file in one ``os.replace``. A reader therefore sees
either the previous record or the new one, never a torn write.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["read_json", "write_atomically", "write_json"]


def write_atomically(path: str | os.PathLike[str], data: bytes | str) -> None:
    """Replaces ``path`` with ``data`` (str is UTF-8) in one step, durably."""
    target = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, partial = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike[str], document: Any) -> None:
    """:func:`write_atomically` of ``document`` as JSON (keys sorted, so equal records are equal bytes)."""
    write_atomically(path, json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any | None:
    """The JSON document at ``path``; None when there is none yet. A corrupt file raises ValueError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{path}: not a valid state record: {exc}") from None
