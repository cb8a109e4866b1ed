"""Reads hash-pinned requirement locks (pip-compile --generate-hashes output)."""

from __future__ import annotations

import dataclasses
import hashlib
import re

_REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def normalize(name: str) -> str:
    """PEP 503 project name normalization."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclasses.dataclass(frozen=True)
class Pin:
    name: str
    version: str
    hashes: tuple[str, ...]

    @property
    def digest(self) -> str:
        return hashlib.sha256(f"{self.version}\n{' '.join(self.hashes)}".encode()).hexdigest()[:16]


def parse(text: str) -> dict[str, Pin]:
    """Normalized project name -> pin, from a lock file's text."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip():
            logical.append(current.strip())
        current = ""
    pins: dict[str, Pin] = {}
    for line in logical:
        match = _REQUIREMENT.match(line)
        if not match:
            continue
        hashes = tuple(sorted(re.findall(r"--hash=(\S+)", line)))
        pin = Pin(name=normalize(match.group(1)), version=match.group(2), hashes=hashes)
        pins[pin.name] = pin
    return pins
