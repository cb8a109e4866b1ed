"""The record of a host tool that a test runs, as `@host_tools` wrote it.

A test that runs a host binary lists `@host_tools//:<name>` in its data (see
repositories.bzl), so the tool's path, version and digest are in the test's
action key, and runs the binary at the recorded path: the one the key describes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HostTool", "recorded"]


@dataclass(frozen=True)
class HostTool:
    name: str
    #: Absolute path of the executable; None when the tool is absent.
    path: str | None
    version: str | None
    #: Why the tool cannot be used (not installed, does not run); None when it can.
    missing: str | None


def recorded(name: str) -> HostTool:
    """The record of `name` in this test's runfiles.

    Raises LookupError when the test does not list `@host_tools//:<name>` in its data:
    running an undeclared tool would make the cached result wrong.
    """
    record_file = Path(os.environ.get("TEST_SRCDIR", "")) / "host_tools" / f"{name}.json"
    if not record_file.is_file():
        raise LookupError(f"{record_file} is missing: add @host_tools//:{name} to the test's data")
    record = json.loads(record_file.read_text())
    return HostTool(name=name, path=record.get("path"), version=record.get("version"), missing=record.get("missing"))
