"""The main job's ``--prometheus``: Debian's prometheus scraping every layer of its stack.

:func:`watch` starts Prometheus on loopback with a scrape config generated from
the stack's metrics ports (one job per layer, tools/monitoring/prometheus.py)
and waits until every target is ``up`` before the job's traffic begins.
:meth:`Watch.finish`, after the plan and the loop, waits for two fresh scrapes
and records per layer how far ``grpc_server_handled_total`` moved, by code:
every layer must have answered RPCs in the run. Leaving :func:`watch` stops
Prometheus (SIGTERM) and records its exit status. Everything goes into the
``summary`` dict it is given (the main job's ``monitoring`` key).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.monitoring.prometheus import HANDLED, Prometheus, PrometheusError, find_binary

__all__ = ["PrometheusError", "Watch", "find_binary", "summary_line", "watch"]


@dataclass
class Watch:
    """A running Prometheus over the stack, and the counters it saw before the run."""

    prom: Prometheus
    jobs: list[str]
    before: dict[str, dict[str, float]]
    summary: dict[str, Any]
    timeout_s: float

    def finish(self) -> None:
        """Records the targets' health and the counter's movement; PrometheusError if a
        target is not ``up`` or a layer's counter did not move."""
        self.prom.wait_fresh_scrapes(self.jobs, self.timeout_s)
        targets = self.prom.targets()
        self.summary["targets"] = {
            job: {
                "health": targets.get(job, {}).get("health", "absent"),
                "scrape_url": targets.get(job, {}).get("scrapeUrl", ""),
                "last_error": targets.get(job, {}).get("lastError", ""),
            }
            for job in self.jobs
        }
        moved: dict[str, dict[str, float]] = {}
        for job in self.jobs:
            after = self.prom.handled_by_code(job)
            delta = {code: n - self.before[job].get(code, 0.0) for code, n in after.items()}
            moved[job] = {code: d for code, d in sorted(delta.items()) if d}
        self.summary["counter"] = HANDLED
        self.summary["moved"] = moved
        down = [job for job, t in self.summary["targets"].items() if t["health"] != "up"]
        if down:
            raise PrometheusError(f"targets not up after the run: {down}")
        still = [job for job in self.jobs if not moved[job]]
        if still:
            raise PrometheusError(f"{HANDLED} did not move in the run for {still}")


@contextlib.contextmanager
def watch(
    binary: str,
    metrics_targets: Mapping[str, str],
    work_dir: Path,
    summary: dict[str, Any],
    timeout_s: float = 30.0,
) -> Iterator[Watch]:
    """Prometheus scraping ``metrics_targets`` (job -> host:port), every target up; stopped on exit."""
    jobs = sorted(metrics_targets)
    prom = Prometheus.start(binary, metrics_targets, work_dir)
    summary.update(
        prometheus=binary,
        url=prom.url,
        config=str(work_dir / "prometheus.yml"),
        log=str(prom.log_path),
        jobs=jobs,
    )
    try:
        up = prom.wait_targets_up(set(jobs), timeout_s)
        summary["targets_up_at_start"] = sorted(job for job in jobs if up[job]["health"] == "up")
        before = {job: prom.handled_by_code(job) for job in jobs}
        yield Watch(prom, jobs, before, summary, timeout_s)
    finally:
        summary["exit_status"] = prom.stop()


def summary_line(monitoring: Mapping[str, Any]) -> str:
    """One printable line: targets up, the counter's movement per layer, the exit status."""
    targets = monitoring.get("targets", {})
    up = sum(1 for t in targets.values() if t["health"] == "up")
    moved = monitoring.get("moved", {})
    counts = ", ".join(
        f"{job.split('_')[0]} {sum(by_code.values()):g}" for job, by_code in sorted(moved.items())
    )
    return (
        f"prometheus {monitoring.get('url', '-')}: {up}/{len(monitoring.get('jobs', []))} "
        f"targets up; {monitoring.get('counter', HANDLED)} moved: {counts or 'not measured'}; "
        f"exit status {monitoring.get('exit_status', '-')}"
    )
