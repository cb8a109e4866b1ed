"""Content digests of build outputs and of a binary's runfiles."""

from __future__ import annotations

import hashlib
import pathlib


def file_sha256(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def runfiles_digest(executable: pathlib.Path) -> dict[str, object] | None:
    """sha256 over (runfiles path, content sha256) of every runfile, or None without runfiles."""
    manifest = executable.with_name(executable.name + ".runfiles_manifest")
    if not manifest.is_file():
        return None
    entries = []
    for line in manifest.read_text().splitlines():
        relative, _, real = line.partition(" ")
        content = file_sha256(pathlib.Path(real)) if real and pathlib.Path(real).is_file() else "empty"
        entries.append(f"{relative} {content}")
    entries.sort()
    return {"files": len(entries), "sha256": hashlib.sha256("\n".join(entries).encode()).hexdigest()}
