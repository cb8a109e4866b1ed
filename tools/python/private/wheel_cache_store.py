"""Stores one installed wheel repository in the installed-wheel cache.

Usage: wheel_cache_store.py ENTRY PATH...

Writes a tar of PATH... (relative to the working directory, the repository)
to ENTRY.tmp-<pid> beside ENTRY and renames it into place, so a reader never
sees half an entry; an existing ENTRY is left as it is.
"""

from __future__ import annotations

import os
import sys
import tarfile
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: wheel_cache_store.py ENTRY PATH...", file=sys.stderr)
        return 2
    entry, paths = Path(argv[0]), argv[1:]
    if entry.exists():
        return 0
    entry.parent.mkdir(parents=True, exist_ok=True)
    partial = entry.with_name(f"{entry.name}.tmp-{os.getpid()}")
    try:
        with tarfile.open(partial, "w") as tar:
            for path in paths:
                tar.add(path)
        os.replace(partial, entry)
    finally:
        partial.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
