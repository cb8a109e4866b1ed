"""Layer 4's ``layer4_*`` Prometheus metrics and the events that move them."""

from __future__ import annotations

from collections.abc import Mapping

from chimera.execution.convert import outcome_name, run_outcome, task_status
from chimera.execution.sandbox import RunResult
from chimera.execution.scheduler import CompletionRecord
from chimera.framework import MetricsRegistry
from chimera.v1 import common_pb2, execution_pb2

__all__ = ["ExecutionMetrics"]

_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
)  # fmt: skip


class ExecutionMetrics:
    """The ``layer4_*`` Prometheus metrics, registered on the server's registry."""

    def __init__(self, registry: MetricsRegistry) -> None:
        self.tasks = registry.counter(
            "layer4_tasks_total", "Tasks that reached a terminal status, by status.", ("status",)
        )
        self.attempts = registry.counter(
            "layer4_attempts_total", "Finished sandbox attempts, by run outcome.", ("outcome",)
        )
        self.task_latency = registry.histogram(
            "layer4_task_latency_seconds",
            "Time from SubmitTask to a terminal status, by status.",
            ("status",),
            _LATENCY_BUCKETS,
        )
        self.attempt_seconds = registry.histogram(
            "layer4_attempt_run_seconds",
            "Sandbox wall time of one attempt, by run outcome.",
            ("outcome",),
            _LATENCY_BUCKETS,
        )
        self.queue_depth = registry.gauge(
            "layer4_queue_depth", "Tasks queued or waiting for a retry."
        )
        self.running = registry.gauge("layer4_running_tasks", "Tasks running in a sandbox now.")
        self.active_modules = registry.gauge(
            "layer4_active_modules", "Module slots with an active deployment."
        )
        self.deployments = registry.counter(
            "layer4_deployments_total", "Deployments made, by kind.", ("kind",)
        )
        self.kpi_drops = registry.counter(
            "layer4_kpi_drops_total",
            "KPI reports dropped because a StreamKpis subscriber's buffer was full.",
        )
        self.kpi_streams = registry.gauge("layer4_kpi_streams", "Open StreamKpis streams.")
        self.kpi_published = registry.counter(
            "layer4_kpi_published_total",
            "KPI reports published (one per finished attempt or batch pair).",
        )
        self.batch_pairs = registry.counter(
            "layer4_batch_pairs_total", "EvaluateBatch pairs run, by run outcome.", ("outcome",)
        )

    def attempt_finished(self, result: RunResult) -> None:
        """Counts one finished task attempt and its sandbox wall time, by run outcome."""
        label = _outcome_label(run_outcome(result))
        self.attempts.labels(outcome=label).inc()
        self.attempt_seconds.labels(outcome=label).observe(result.latency_ms / 1000.0)

    def task_finished(self, record: CompletionRecord) -> None:
        """Counts a task's terminal status and its time from submission, by status."""
        label = common_pb2.TaskStatus.Name(task_status(record.state))
        label = label.removeprefix("TASK_STATUS_").lower()
        self.tasks.labels(status=label).inc()
        self.task_latency.labels(status=label).observe(
            max(record.finished_at - record.submitted_at, 0.0)
        )

    def batch_finished(self, response: execution_pb2.EvaluateBatchResponse) -> None:
        """Counts a batch's pairs by run outcome."""
        for report in response.reports:
            self.batch_pairs.labels(outcome=_outcome_label(report.status)).inc()

    def set_load(self, scheduler_stats: Mapping[str, int], active_modules: int) -> None:
        """Sets the queue, running and active-module gauges (``Scheduler.stats()``)."""
        self.queue_depth.set(scheduler_stats["waiting"])
        self.running.set(scheduler_stats["running"])
        self.active_modules.set(active_modules)


def _outcome_label(outcome: int) -> str:
    """``trap`` for RUN_OUTCOME_TRAP: the ``outcome`` label's value."""
    return outcome_name(outcome).removeprefix("RUN_OUTCOME_").lower()
