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
    # The locked distributions that require this one: pip-compile's `# via`
    # annotations (requirement files, `-r ...`, are left out).
    required_by: tuple[str, ...] = ()

    @property
    def digest(self) -> str:
        return hashlib.sha256(f"{self.version}\n{' '.join(self.hashes)}".encode()).hexdigest()[:16]


def _via(comment: str) -> list[str]:
    """The distributions named by one `# via` comment line (single-line or list form)."""
    names = comment.removeprefix("via").strip()
    return [normalize(n) for n in names.split(",") if n.strip() and not n.strip().startswith("-")] if names else []


def parse(text: str) -> dict[str, Pin]:
    """Normalized project name -> pin, from a lock file's text."""
    logical: list[tuple[str, list[str]]] = []  # (requirement line, its `# via` names)
    current = ""
    in_via = False
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#"):
            comment = stripped.lstrip("#").strip()
            if comment.startswith("via"):
                in_via = True
                if logical:
                    logical[-1][1].extend(_via(comment))
            elif in_via and raw.startswith("    #   ") and logical:
                logical[-1][1].extend(_via("via " + comment))
            else:
                in_via = False
            continue
        in_via = False
        line = raw.split(" #", 1)[0].strip()
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip():
            logical.append((current.strip(), []))
        current = ""
    pins: dict[str, Pin] = {}
    for line, via in logical:
        match = _REQUIREMENT.match(line)
        if not match:
            continue
        hashes = tuple(sorted(re.findall(r"--hash=(\S+)", line)))
        pin = Pin(name=normalize(match.group(1)), version=match.group(2), hashes=hashes,
                  required_by=tuple(sorted(set(via))))
        pins[pin.name] = pin
    return pins


def requirements(pins: dict[str, Pin]) -> dict[str, list[str]]:
    """Distribution -> the locked distributions it requires (the inverse of `# via`)."""
    requires: dict[str, set[str]] = {name: set() for name in pins}
    for pin in pins.values():
        for dependent in pin.required_by:
            if dependent in requires:
                requires[dependent].add(pin.name)
    return {name: sorted(deps) for name, deps in requires.items()}
