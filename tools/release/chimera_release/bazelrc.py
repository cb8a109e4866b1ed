"""The build-affecting flags of a revision's .bazelrc (default configuration only).

`common`/`build` lines apply to every build (and so to every rule), `test` lines
to test rules only. Named configs (`build:metrics`) apply only with --config, so
they do not change what a plain build produces; `startup`, `query`, `run` lines
change no output either.
"""

from __future__ import annotations

import shlex
from typing import Callable

BUILD_COMMANDS = {"common": "build", "build": "build", "test": "test"}


def parse(read: Callable[[str], bytes | None], path: str = ".bazelrc") -> dict[str, dict[str, list[str]]]:
    """{"build"|"test": {flag: [values in order]}} from the rc file at `path`."""
    flags: dict[str, dict[str, list[str]]] = {"build": {}, "test": {}}
    _parse_into(read, path, flags, seen=set())
    return flags


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        if raw.rstrip().endswith("\\"):
            current += raw.rstrip()[:-1] + " "
            continue
        lines.append(current + raw)
        current = ""
    if current:
        lines.append(current)
    return lines


def _parse_into(read: Callable[[str], bytes | None], path: str, flags: dict[str, dict[str, list[str]]],
                seen: set[str]) -> None:
    if path in seen:
        return
    seen.add(path)
    content = read(path)
    if content is None:
        return
    for line in _logical_lines(content.decode(errors="replace")):
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:
            continue
        if not tokens:
            continue
        command, *rest = tokens
        if command in ("import", "try-import") and rest:
            target = rest[0].replace("%workspace%/", "")
            if not target.startswith("/"):
                _parse_into(read, target, flags, seen)
            continue
        if ":" in command or command not in BUILD_COMMANDS:
            continue
        group = flags[BUILD_COMMANDS[command]]
        index = 0
        while index < len(rest):
            token = rest[index]
            if token.startswith("--") and "=" in token:
                name, value = token.split("=", 1)
            elif token.startswith("-") and index + 1 < len(rest) and not rest[index + 1].startswith("-"):
                name, value = token, rest[index + 1]
                index += 1
            else:
                name, value = token, ""
            group.setdefault(name, []).append(value)
            index += 1
