"""Reads Bazel's JSON trace profile (--profile=FILE with
--experimental_profile_include_target_label and
--experimental_profile_include_primary_output).

Each "action processing" event is one action with its owning target
(args.target) and primary output (out). Events nested inside it on the same
thread tell how it ran: a local spawn ("subprocess.run"), a remote cache hit
(a remote download without a local spawn), or no spawn at all (Bazel-internal
actions such as writing a file or a symlink).
"""

from __future__ import annotations

import bisect
import gzip
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# How an action ran.
LOCAL = "local"
REMOTE_CACHE_HIT = "remote_cache_hit"
REMOTE_EXECUTION = "remote_execution"
INTERNAL = "internal"

_LOCAL_SPAWN_NAMES = frozenset({"subprocess.run", "sandbox.createFileSystem"})
_REMOTE_DOWNLOAD_CATEGORIES = frozenset({"remote output download", "Remote.download"})
_REMOTE_EXECUTION_CATEGORIES = frozenset({"remote action execution", "Remote execution process"})
_CRITICAL_ACTION = re.compile(r"^action '(?P<description>.*)'$")
_LABEL_IN_TEXT = re.compile(r"(@[\w.\-]*)?//[\w.\-/]*(:[^\s']+)?")


@dataclass(frozen=True)
class Action:
    """One executed action of the profiled invocation."""

    target: str
    description: str
    primary_output: str
    start_us: int
    duration_us: int
    thread: int
    execution: str  # LOCAL, REMOTE_CACHE_HIT, REMOTE_EXECUTION or INTERNAL

    @property
    def seconds(self) -> float:
        return self.duration_us / 1e6

    @property
    def is_test(self) -> bool:
        return "/testlogs/" in self.primary_output or self.description.startswith("Testing ")

    @property
    def is_metrics(self) -> bool:
        """An action of the metrics aspect itself (its overhead, not the target's build)."""
        return "/_metrics/" in self.primary_output or "/_metrics_static/" in self.primary_output


@dataclass(frozen=True)
class CriticalPathStep:
    description: str
    target: str
    duration_us: int


@dataclass
class Profile:
    actions: list[Action] = field(default_factory=list)
    critical_path: list[CriticalPathStep] = field(default_factory=list)
    phases: dict[str, int] = field(default_factory=dict)  # phase marker -> start (us)
    end_us: int = 0

    @property
    def execution_seconds(self) -> float:
        """Wall time of the execution phase ("Build artifacts" to "Complete build")."""
        start = self.phases.get("Build artifacts")
        end = self.phases.get("Complete build", self.end_us)
        if start is None:
            return 0.0
        return max(0, end - start) / 1e6

    @property
    def critical_path_seconds(self) -> float:
        return sum(step.duration_us for step in self.critical_path) / 1e6


def read_events(path: Path) -> list[dict[str, Any]]:
    """The trace events of a profile file (plain or gzipped JSON, object or bare list)."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    data = json.loads(raw)
    events = data.get("traceEvents", []) if isinstance(data, dict) else data
    if not isinstance(events, list):
        raise ValueError(f"{path}: no traceEvents list")
    return events


def _classify(nested: list[tuple[int, int, str, str]]) -> str:
    local = any(name in _LOCAL_SPAWN_NAMES for _, _, _, name in nested)
    if local:
        return LOCAL
    if any(cat in _REMOTE_EXECUTION_CATEGORIES for _, _, cat, _ in nested):
        return REMOTE_EXECUTION
    if any(cat in _REMOTE_DOWNLOAD_CATEGORIES for _, _, cat, _ in nested):
        return REMOTE_CACHE_HIT
    return INTERNAL


def parse(path: Path) -> Profile:
    """Reads a profile into actions, the critical path and phase markers."""
    events = read_events(path)
    profile = Profile()
    action_events: list[dict[str, Any]] = []
    # Per thread: (start, end, category, name) of every complete event that is not an action.
    by_thread: dict[int, list[tuple[int, int, str, str]]] = {}
    for ev in events:
        ph = ev.get("ph")
        cat = ev.get("cat") or ""
        ts = int(ev.get("ts", 0))
        dur = int(ev.get("dur", 0) or 0)
        profile.end_us = max(profile.end_us, ts + dur)
        if cat == "build phase marker":
            profile.phases.setdefault(str(ev.get("name")), ts)
        elif cat == "action processing" and ph == "X":
            action_events.append(ev)
        elif cat == "critical path component" and ph == "X":
            profile.critical_path.append(CriticalPathStep(str(ev.get("name", "")), "", dur))
        elif ph == "X":
            by_thread.setdefault(int(ev.get("tid", 0)), []).append((ts, ts + dur, cat, str(ev.get("name", ""))))

    for spans in by_thread.values():
        spans.sort()
    starts = {tid: [s[0] for s in spans] for tid, spans in by_thread.items()}

    description_to_target: dict[str, str] = {}
    for ev in action_events:
        ts = int(ev["ts"])
        dur = int(ev.get("dur", 0) or 0)
        tid = int(ev.get("tid", 0))
        spans = by_thread.get(tid, [])
        lo = bisect.bisect_left(starts.get(tid, []), ts)
        hi = bisect.bisect_right(starts.get(tid, []), ts + dur)
        nested = [s for s in spans[lo:hi] if s[1] <= ts + dur]
        args = ev.get("args") or {}
        action = Action(
            target=str(args.get("target", "") or ""),
            description=str(ev.get("name", "")),
            primary_output=str(ev.get("out", "") or ""),
            start_us=ts,
            duration_us=dur,
            thread=tid,
            execution=_classify(nested),
        )
        profile.actions.append(action)
        description_to_target.setdefault(action.description, action.target)

    steps = []
    for step in profile.critical_path:
        match = _CRITICAL_ACTION.match(step.description)
        target = description_to_target.get(match.group("description"), "") if match else ""
        if not target:
            found = _LABEL_IN_TEXT.search(step.description)
            target = found.group(0) if found else ""
        steps.append(CriticalPathStep(step.description, target, step.duration_us))
    profile.critical_path = steps
    return profile


def with_executions(profile: Profile, executions: dict[str, str]) -> Profile:
    """The profile with each action's execution taken from `executions` (primary output or
    description -> LOCAL / REMOTE_CACHE_HIT / ...), e.g. from the execution log."""
    actions = [
        Action(a.target, a.description, a.primary_output, a.start_us, a.duration_us, a.thread,
               executions.get(a.primary_output) or executions.get(a.description) or a.execution)
        for a in profile.actions
    ]
    return Profile(actions, profile.critical_path, profile.phases, profile.end_us)
