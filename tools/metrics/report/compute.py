"""Joins the profile, the BEP and the aspect files into build_metrics.json (see
docs/metrics.md for every field)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from tools.metrics.report import profile as profile_mod
from tools.metrics.report.aspect import TargetInfo
from tools.metrics.report.bep import BuildEvents
from tools.metrics.report.execlog import Spawn
from tools.metrics.report.layers import LAYERS, group_order, layer_of
from tools.metrics.report.profile import Profile

# 2: the specification's key names (build_timestamp, total_times.build_seconds/test_seconds,
# system_metrics.total_binary_size_mb/average_*); 1 had generated_at and *_time_seconds totals.
SCHEMA_VERSION = 2
BYTES_PER_MB = 1_000_000

SUCCESS = "success"
FAILED = "failed"
CACHED = "cached"
MISSING = "missing"


@dataclass
class TargetRow:
    label: str
    layer: str
    kind: str = ""
    requested: bool = False
    is_test: bool = False
    deliverable: bool = False
    deps: tuple[str, ...] = ()
    build_time_s: float = 0.0  # executed build actions
    cached_time_s: float = 0.0  # actions served by the remote cache
    metrics_time_s: float = 0.0  # the aspect's own actions
    actions_executed: int = 0
    actions_remote_executed: int = 0  # of actions_executed, run by remote execution
    actions_cached: int = 0
    actions_internal: int = 0
    test_time_s: float = 0.0
    test_status: str = ""
    test_cached: bool = False
    tests_run: int = 0
    output_bytes: int = 0
    deliverable_bytes: int = 0
    built: bool | None = None  # from BEP targetCompleted; None if not reported
    outputs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.built is False or (self.test_status not in ("", "PASSED", "FLAKY"))

    @property
    def status(self) -> str:
        if self.failed:
            return FAILED
        if self.actions_executed == 0 and (not self.test_status or self.test_cached):
            return CACHED
        return SUCCESS

    def as_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "layer": self.layer,
            "kind": self.kind,
            "requested": self.requested,
            "status": self.status,
            "build_time_seconds": _r(self.build_time_s),
            "cached_action_time_seconds": _r(self.cached_time_s),
            "actions_executed": self.actions_executed,
            "actions_remote_executed": self.actions_remote_executed,
            "actions_remote_cache_hit": self.actions_cached,
            "actions_internal": self.actions_internal,
            "output_bytes": self.output_bytes,
            "deliverable": self.deliverable,
            "deps": list(self.deps),
        }
        if self.metrics_time_s:
            row["metrics_aspect_seconds"] = _r(self.metrics_time_s)
        if self.is_test or self.test_status:
            row.update({
                "test_time_seconds": _r(self.test_time_s),
                "test_status": self.test_status or "NO_STATUS",
                "test_cached": self.test_cached,
            })
        if self.outputs:
            row["outputs"] = self.outputs
        return row


def _r(x: float, digits: int = 3) -> float:
    return round(float(x), digits)


def _rows(prof: Profile, events: BuildEvents, targets: dict[str, TargetInfo]) -> dict[str, TargetRow]:
    rows: dict[str, TargetRow] = {}

    def row(label: str) -> TargetRow:
        if label not in rows:
            rows[label] = TargetRow(label=label, layer=layer_of(label))
        return rows[label]

    for label, info in targets.items():
        r = row(label)
        r.layer = info.layer or r.layer
        r.kind = info.kind
        r.requested = True
        r.is_test = info.is_test
        r.deliverable = info.deliverable
        r.deps = info.deps
        r.output_bytes = info.total_bytes
        r.deliverable_bytes = info.total_bytes if info.deliverable and not info.is_test else 0
        r.outputs = [{"path": o.path, "size_bytes": o.size_bytes} for o in info.outputs]

    for label, success in events.target_success.items():
        r = row(label)
        r.requested = True
        r.built = success if r.built is None else (r.built and success)
        r.kind = r.kind or events.target_kinds.get(label, "")

    for action in prof.actions:
        if not action.target or action.is_test:
            continue
        r = row(action.target)
        if action.is_metrics:
            r.metrics_time_s += action.seconds
        elif action.execution == profile_mod.REMOTE_CACHE_HIT:
            r.cached_time_s += action.seconds
            r.actions_cached += 1
        elif action.execution == profile_mod.INTERNAL:
            r.build_time_s += action.seconds
            r.actions_internal += 1
        else:
            r.build_time_s += action.seconds
            r.actions_executed += 1
            r.actions_remote_executed += action.execution == profile_mod.REMOTE_EXECUTION

    finals: dict[str, dict[tuple[int, int], list[bool]]] = {}
    for test in sorted(events.tests, key=lambda t: (t.label, t.run, t.shard, t.attempt)):
        r = row(test.label)
        r.is_test = True
        r.tests_run += 1
        r.test_time_s += test.duration_s
        r.test_cached = (r.test_cached or r.tests_run == 1) and test.cached
        attempts = finals.setdefault(test.label, {}).setdefault((test.run, test.shard), [])
        attempts.append(test.passed)
        if not test.passed:
            r.test_status = test.status if r.test_status in ("", "PASSED", "FLAKY") else r.test_status
    for label, runs in finals.items():
        r = rows[label]
        final_failed = any(not attempts[-1] for attempts in runs.values())
        if final_failed:
            continue  # keeps the failing status recorded above
        flaky = any(not all(attempts) for attempts in runs.values())
        r.test_status = "FLAKY" if flaky else "PASSED"
    return rows


def _group(rows: list[TargetRow]) -> dict[str, Any]:
    if not rows:
        return {
            "build_time_seconds": 0.0, "test_time_seconds": 0.0, "status": MISSING,
            "binary_size_mb": 0.0, "targets": 0, "tests": 0,
        }
    statuses = {r.status for r in rows if r.requested or r.failed}
    if FAILED in statuses:
        status = FAILED
    elif statuses <= {CACHED}:
        status = CACHED
    else:
        status = SUCCESS
    tests = [r for r in rows if r.is_test]
    return {
        "build_time_seconds": _r(sum(r.build_time_s for r in rows)),
        "test_time_seconds": _r(sum(r.test_time_s for r in rows)),
        "status": status,
        "binary_size_mb": _r(sum(r.deliverable_bytes for r in rows) / BYTES_PER_MB, 6),
        "cached_action_time_seconds": _r(sum(r.cached_time_s for r in rows)),
        "output_bytes": sum(r.output_bytes for r in rows),
        "deliverable_bytes": sum(r.deliverable_bytes for r in rows),
        "targets": sum(1 for r in rows if r.requested),
        "tests": len(tests),
        "tests_passed": sum(1 for r in tests if r.test_status in ("PASSED", "FLAKY")),
        "actions_executed": sum(r.actions_executed for r in rows),
        "actions_remote_executed": sum(r.actions_remote_executed for r in rows),
        "actions_remote_cache_hit": sum(r.actions_cached for r in rows),
    }


def timestamp(moment: datetime.datetime) -> str:
    """UTC, whole seconds, "Z" suffix: the specification's `build_timestamp` form."""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def layer_summary(layers: dict[str, dict[str, Any]]) -> dict[str, float]:
    """The specification's system_metrics derived from the layers: total deliverable size,
    and build/test time averaged over the layers that have targets (a layer still
    `missing` would pull the average towards zero without having been built)."""
    present = [layer for layer in layers.values() if layer.get("status") != MISSING]
    count = len(present) or 1  # no layer at all: the sums are 0, and so are the averages
    return {
        "total_binary_size_mb": _r(sum(layer["binary_size_mb"] for layer in layers.values()), 6),
        "average_build_time_seconds": _r(sum(layer["build_time_seconds"] for layer in present) / count),
        "average_test_time_seconds": _r(sum(layer["test_time_seconds"] for layer in present) / count),
        "layers_counted_in_averages": len(present),
    }


def _cache(prof: Profile, events: BuildEvents, spawns: list[Spawn] | None) -> dict[str, Any]:
    counted = [a for a in prof.actions if a.execution != profile_mod.INTERNAL]
    hits = sum(1 for a in counted if a.execution == profile_mod.REMOTE_CACHE_HIT)
    tests = events.tests
    cache: dict[str, Any] = {
        "process_stats": events.process_stats,
        "processes": events.processes,
        "remote_cache_hits": events.remote_cache_hits,
        "actions_with_spawn": len(counted),
        "actions_remote_cache_hit": hits,
        "actions_executed": len(counted) - hits,
        "actions_remote_executed": sum(1 for a in counted if a.execution == profile_mod.REMOTE_EXECUTION),
        "actions_created": events.actions_created,
        "actions_run_by_bazel": events.actions_executed,
        "actions_skipped": max(0, events.actions_created - events.actions_executed),
        "tests": len(tests),
        "tests_cached_locally": sum(1 for t in tests if t.cached_locally),
        "tests_cached_remotely": sum(1 for t in tests if t.cached_remotely),
        "test_cache_hit_rate": _r(sum(1 for t in tests if t.cached) / len(tests), 4) if tests else None,
    }
    spawn_total = events.processes.get("total", 0) - events.processes.get("internal", 0)
    cache["hit_rate"] = _r(events.remote_cache_hits / spawn_total, 4) if spawn_total > 0 else None
    cache["hit_rate_source"] = "process stats: remote cache hits / non-internal processes"
    if spawns is not None:
        cacheable = [s for s in spawns if s.cacheable]
        hit = [s for s in cacheable if s.remote_cache_hit]
        missed = [s for s in cacheable if not s.remote_cache_hit]
        cache.update({
            "spawns": len(spawns),
            "spawns_cacheable": len(cacheable),
            "spawns_remote_cache_hit": len(hit),
            "hit_rate": _r(len(hit) / len(cacheable), 4) if cacheable else None,
            "hit_rate_source": "execution log: remote cache hits / cacheable spawns",
            "misses": [
                {"mnemonic": s.mnemonic, "progress_message": s.progress_message,
                 "primary_output": s.primary_output, "runner": s.runner}
                for s in missed
            ],
        })
    return cache


def compute(
    prof: Profile,
    events: BuildEvents,
    targets: dict[str, TargetInfo],
    *,
    spawns: list[Spawn] | None = None,
    jobs: int | None = None,
    machine: dict[str, Any] | None = None,
    inputs: dict[str, Any] | None = None,
    now: datetime.datetime | None = None,
    include_outputs: bool = True,
) -> dict[str, Any]:
    """The full report as a JSON-ready dict."""
    rows = _rows(prof, events, targets)
    by_group: dict[str, list[TargetRow]] = {}
    for r in rows.values():
        by_group.setdefault(r.layer or "unknown", []).append(r)

    layers = {name: _group(by_group.get(name, [])) for name in LAYERS}
    others = {
        name: _group(group)
        for name, group in sorted(by_group.items(), key=lambda kv: group_order(kv[0]))
        if name not in LAYERS
    }

    actions = prof.actions
    action_time = sum(a.seconds for a in actions)
    execution_wall = prof.execution_seconds
    cpu = (machine or {}).get("nproc")
    effective_jobs = jobs or events.jobs or cpu or 1
    jobs_source = "--jobs" if (jobs or events.jobs) else "nproc (Bazel's default --jobs)"
    # Nothing executed (a no-op build) means no parallel work: 0, not undefined, so the
    # specification's field stays a number.
    efficiency = action_time / (execution_wall * effective_jobs) if execution_wall > 0 else 0.0

    built_and_tested = [
        name for name, layer in layers.items()
        if layer["status"] in (SUCCESS, CACHED) and layer["tests"] > 0 and layer["tests_passed"] == layer["tests"]
    ]
    failed = [name for name, layer in layers.items() if layer["status"] == FAILED]
    status = f"{len(built_and_tested)}/{len(LAYERS)} layers built and tested"
    if failed:
        status += f" ({', '.join(failed)} failed)"

    critical = [
        {"description": s.description, "target": s.target, "seconds": _r(s.duration_us / 1e6)}
        for s in prof.critical_path
    ]
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "build_timestamp": timestamp(now or datetime.datetime.now(datetime.timezone.utc)),
        "command": events.command,
        "overall_success": events.overall_success,
        "layers": layers,
        "other_groups": others,
        "total_times": {
            "build_seconds": _r(sum(r.build_time_s for r in rows.values())),
            "test_seconds": _r(sum(r.test_time_s for r in rows.values())),
            "cached_action_time_seconds": _r(sum(r.cached_time_s for r in rows.values())),
            "metrics_aspect_seconds": _r(sum(r.metrics_time_s for r in rows.values())),
            "wall_time_seconds": _r(events.wall_time_s),
            "execution_phase_seconds": _r(execution_wall),
            "critical_path_seconds": _r(prof.critical_path_seconds),
        },
        "system_metrics": {
            **layer_summary(layers),
            "parallel_build_efficiency": _r(efficiency, 4),
            "total_action_wall_time_seconds": _r(action_time),
            "build_wall_time_seconds": _r(execution_wall),
            "jobs": effective_jobs,
            "jobs_source": jobs_source,
            "cpu_time_seconds": _r(events.cpu_time_s),
            "actions_in_profile": len(actions),
            **(machine or {}),
        },
        "project_status": status,
        "cache": _cache(prof, events, spawns),
        "critical_path": {"seconds": _r(prof.critical_path_seconds), "components": critical},
        "targets": {
            label: (r.as_json() if include_outputs else {k: v for k, v in r.as_json().items() if k != "outputs"})
            for label, r in sorted(rows.items())
        },
        "inputs": inputs or {},
    }
    return report


def _coverage_layers(source: str, data: dict[str, Any] | None, report: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """layerN -> (measured units, covered units) of one coverage file, checked."""
    if data is None:
        return {}
    layers = data.get("layers") if isinstance(data, dict) else None
    if not isinstance(layers, dict):
        raise ValueError(f'{source}: no "layers" object')
    out = {}
    for name, figures in layers.items():
        if name not in report["layers"]:
            raise ValueError(f"{source}: unknown layer {name!r}")
        percent = figures.get("coverage_percent") if isinstance(figures, dict) else None
        if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 <= percent <= 100:
            raise ValueError(f"{source}: layers.{name}.coverage_percent is not a percentage: {percent!r}")
        total = int(figures.get("statements", figures.get("lines", 0)))
        covered = int(figures.get("covered", 0))
        if not 0 <= covered <= total:
            raise ValueError(f"{source}: layers.{name}: covered {covered} of {total}")
        out[name] = (total, covered)
    return out


def add_coverage(report: dict[str, Any], python: dict[str, Any] | None, rust: dict[str, Any] | None = None) -> None:
    """Adds ci/coverage.sh's (Python statements) and ci/rust_coverage.sh's (Rust lines)
    figures: layers.layerN.python_coverage_percent, rust_coverage_percent, and
    coverage_percent = all covered / all measured, both languages together."""
    parts = {"python": _coverage_layers("python coverage", python, report),
             "rust": _coverage_layers("rust coverage", rust, report)}
    for name in sorted(set(parts["python"]) | set(parts["rust"])):
        layer = report["layers"][name]
        total = covered = 0
        for language, figures in parts.items():
            if name in figures:
                t, c = figures[name]
                layer[f"{language}_coverage_percent"] = _r(100 * c / t, 2) if t else 0.0
                layer[f"{language}_coverage_measured"] = t
                total, covered = total + t, covered + c
        layer["coverage_percent"] = _r(100 * covered / total, 2) if total else 0.0
