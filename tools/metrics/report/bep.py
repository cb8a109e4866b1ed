"""Reads the Build Event Protocol JSON stream (--build_event_json_file=FILE)."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

METRICS_OUTPUT_GROUP = "metrics"
_PROCESS_STATS = re.compile(r"(\d+) ([A-Za-z][\w\- ]*?)(?=[,.]|$)")
_PASSING = frozenset({"PASSED", "FLAKY"})


@dataclass(frozen=True)
class TestResult:
    label: str
    status: str
    duration_s: float
    cached_locally: bool
    cached_remotely: bool
    strategy: str
    run: int
    shard: int
    attempt: int

    @property
    def cached(self) -> bool:
        return self.cached_locally or self.cached_remotely

    @property
    def passed(self) -> bool:
        return self.status in _PASSING


@dataclass
class BuildEvents:
    command: str = ""
    start_ms: int = 0
    finish_ms: int = 0
    wall_time_s: float = 0.0
    cpu_time_s: float = 0.0
    overall_success: bool = False
    exit_code: str = ""
    jobs: int | None = None
    options: list[str] = field(default_factory=list)
    actions_created: int = 0
    actions_executed: int = 0
    process_stats: str = ""
    processes: dict[str, int] = field(default_factory=dict)  # runner -> count, plus "total"
    critical_path_text: str = ""
    target_kinds: dict[str, str] = field(default_factory=dict)  # label -> "rust_library"
    target_success: dict[str, bool] = field(default_factory=dict)  # label -> built?
    tests: list[TestResult] = field(default_factory=list)
    aspect_files: list[Path] = field(default_factory=list)  # metrics JSON of each target
    exec_root: str = ""  # workspaceInfo.localExecRoot

    @property
    def remote_cache_hits(self) -> int:
        return self.processes.get("remote cache hit", 0)


def read_events(path: Path) -> list[dict[str, Any]]:
    """The events of a BEP JSON file (one JSON object per line)."""
    events = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{number}: not a BEP JSON line: {err}") from err
    return events


def parse_process_stats(text: str) -> dict[str, int]:
    """"12 processes: 5 remote cache hit, 3 internal, 4 linux-sandbox." -> counts by runner."""
    counts: dict[str, int] = {}
    head, _, rest = text.partition(":")
    total = re.match(r"\s*(\d+) process", head)
    if total:
        counts["total"] = int(total.group(1))
    for number, runner in _PROCESS_STATS.findall(rest):
        counts[runner.strip()] = counts.get(runner.strip(), 0) + int(number)
    return counts


def _jobs(options: list[str]) -> int | None:
    jobs = None
    for i, option in enumerate(options):
        value = None
        if option.startswith("--jobs="):
            value = option.split("=", 1)[1]
        elif option in ("--jobs", "-j") and i + 1 < len(options):
            value = options[i + 1]
        elif option.startswith("-j") and option[2:].isdigit():
            value = option[2:]
        if value is not None and value.isdigit():
            jobs = int(value)
    return jobs


def _uri_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


def parse(path: Path) -> BuildEvents:
    """Reads test results, target outcomes, build metrics and tool logs from a BEP file."""
    out = BuildEvents()
    named_sets: dict[str, dict[str, Any]] = {}
    metrics_sets: list[str] = []
    for event in read_events(path):
        ids = event.get("id") or {}
        kind = next(iter(ids), "")
        eid = ids.get(kind) or {}
        if kind == "started":
            started = event.get("started", {})
            out.command = started.get("command", "")
            out.start_ms = int(started.get("startTimeMillis", 0))
        elif kind == "workspace":
            out.exec_root = event.get("workspaceInfo", {}).get("localExecRoot", "")
        elif kind == "optionsParsed":
            out.options = list(event.get("optionsParsed", {}).get("cmdLine", []))
            out.jobs = _jobs(out.options)
        elif kind == "buildFinished":
            finished = event.get("finished", {})
            out.finish_ms = int(finished.get("finishTimeMillis", 0))
            out.overall_success = bool(finished.get("overallSuccess", False))
            out.exit_code = finished.get("exitCode", {}).get("name", "")
        elif kind == "buildMetrics":
            metrics = event.get("buildMetrics", {})
            summary = metrics.get("actionSummary", {})
            out.actions_created = int(summary.get("actionsCreated", 0))
            out.actions_executed = int(summary.get("actionsExecuted", 0))
            timing = metrics.get("timingMetrics", {})
            out.wall_time_s = int(timing.get("wallTimeInMs", 0)) / 1000
            out.cpu_time_s = int(timing.get("cpuTimeInMs", 0)) / 1000
        elif kind == "buildToolLogs":
            for log in event.get("buildToolLogs", {}).get("log", []):
                contents = base64.b64decode(log.get("contents", "") or "").decode("utf-8", "replace")
                if log.get("name") == "process stats":
                    out.process_stats = contents.strip()
                    out.processes = parse_process_stats(out.process_stats)
                elif log.get("name") == "critical path":
                    out.critical_path_text = contents
        elif kind == "targetConfigured":
            target_kind = event.get("configured", {}).get("targetKind", "")
            out.target_kinds[eid.get("label", "")] = target_kind.removesuffix(" rule")
            if "aborted" in event:
                out.target_success[eid.get("label", "")] = False
        elif kind == "targetCompleted":
            label = eid.get("label", "")
            completed = event.get("completed")
            success = bool(completed and completed.get("success", False))
            if eid.get("aspect"):
                for group in (completed or {}).get("outputGroup", []):
                    if group.get("name") == METRICS_OUTPUT_GROUP:
                        metrics_sets.extend(fs["id"] for fs in group.get("fileSets", []))
                if not success:
                    out.target_success[label] = False
            else:
                out.target_success[label] = success and out.target_success.get(label, True)
        elif kind == "namedSet":
            named_sets[eid.get("id", "")] = event.get("namedSetOfFiles", {})
        elif kind == "testResult":
            result = event.get("testResult", {})
            info = result.get("executionInfo", {})
            out.tests.append(TestResult(
                label=eid.get("label", ""),
                status=result.get("status", "NO_STATUS"),
                duration_s=int(result.get("testAttemptDurationMillis", 0)) / 1000,
                cached_locally=bool(result.get("cachedLocally", False)),
                cached_remotely=bool(info.get("cachedRemotely", False)),
                strategy=info.get("strategy", ""),
                run=int(eid.get("run", 1)),
                shard=int(eid.get("shard", 1)),
                attempt=int(eid.get("attempt", 1)),
            ))
    if not out.wall_time_s and out.finish_ms and out.start_ms:
        out.wall_time_s = (out.finish_ms - out.start_ms) / 1000
    out.aspect_files = _files_of(metrics_sets, named_sets, out.exec_root)
    return out


def _local_path(entry: dict[str, Any], exec_root: str) -> Path | None:
    """Where a BEP file entry is on disk: its file:// URI, or, when the URI points at a
    remote cache (bytestream://), the exec root + pathPrefix + name."""
    path = _uri_path(entry.get("uri", ""))
    if path is not None:
        return path
    if exec_root and entry.get("name"):
        return Path(exec_root, *entry.get("pathPrefix", []), entry["name"])
    return None


def _files_of(set_ids: list[str], named_sets: dict[str, dict[str, Any]], exec_root: str = "") -> list[Path]:
    files: dict[Path, None] = {}
    seen: set[str] = set()
    stack = list(set_ids)
    while stack:
        set_id = stack.pop()
        if set_id in seen:
            continue
        seen.add(set_id)
        named = named_sets.get(set_id, {})
        for f in named.get("files", []):
            path = _local_path(f, exec_root)
            if path is not None:
                files[path] = None
        stack.extend(fs["id"] for fs in named.get("fileSets", []))
    return sorted(files)
