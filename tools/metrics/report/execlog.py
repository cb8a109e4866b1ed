"""Reads the execution log (--execution_log_json_file=FILE): one JSON object per spawn,
with whether it was a remote cache hit and whether it could have been one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tools.metrics.report import profile


@dataclass(frozen=True)
class Spawn:
    mnemonic: str
    progress_message: str
    outputs: tuple[str, ...]
    runner: str
    remote_cache_hit: bool
    cacheable: bool  # could the remote cache have served it?

    @property
    def primary_output(self) -> str:
        return self.outputs[0] if self.outputs else ""

    @property
    def execution(self) -> str:
        if self.remote_cache_hit:
            return profile.REMOTE_CACHE_HIT
        if self.runner == "remote":
            return profile.REMOTE_EXECUTION
        return profile.LOCAL


def _objects(text: str) -> Iterator[dict]:
    decoder = json.JSONDecoder()
    i = 0
    n = len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            return
        obj, i = decoder.raw_decode(text, i)
        yield obj


def parse(path: Path) -> list[Spawn]:
    """Every spawn in the log (Bazel 4 writes concatenated, pretty-printed JSON objects).
    Bazel 4 logs each test spawn twice; repeated identical entries are kept once."""
    spawns: list[Spawn] = []
    seen: set[Spawn] = set()
    try:
        for obj in _objects(path.read_text()):
            outputs = obj.get("listedOutputs") or [o.get("path", "") for o in obj.get("actualOutputs", [])]
            # Bazel's own test.xml writer (tools/test/generate-xml.sh) has the test's
            # measured duration on its command line, so no run can reuse another's.
            writes_test_xml = any("generate-xml.sh" in str(a) for a in obj.get("commandArgs", []))
            spawn = Spawn(
                mnemonic=str(obj.get("mnemonic", "")),
                progress_message=str(obj.get("progressMessage", "")),
                outputs=tuple(str(o) for o in outputs),
                runner=str(obj.get("runner", "")),
                remote_cache_hit=bool(obj.get("remoteCacheHit", False)),
                cacheable=bool(obj.get("remotable", True)) and bool(obj.get("cacheable", True))
                and bool(obj.get("remoteCacheable", True)) and not writes_test_xml,
            )
            if spawn not in seen:
                seen.add(spawn)
                spawns.append(spawn)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not an execution log: {err}") from err
    return spawns


def executions(spawns: list[Spawn]) -> dict[str, str]:
    """How each spawn ran, keyed by each of its outputs and by its progress message, to join
    with the profile's actions (primary output, or description for test actions)."""
    result: dict[str, str] = {}
    for spawn in spawns:
        for output in spawn.outputs:
            result[output] = spawn.execution
        if spawn.progress_message:
            result.setdefault(spawn.progress_message, spawn.execution)
    return result
