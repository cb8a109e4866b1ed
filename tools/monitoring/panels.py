"""What the Grafana dashboard shows for each layer: one row per layer, the same RPC
panels for all (go-grpc-prometheus names, registered by the framework's
MetricsInterceptor) and each layer's own figures.

A new layer joins with one ``LayerRow`` line in ``LAYER_ROWS``; its ``job`` is the
name the main job's stack gives its server (tools/main/stack.py ``LAYERS``), which is
also the Prometheus job the generated scrape config uses. ``probe`` is a unary method
of the layer's service that check.py calls with an empty request to move a counter
(health checks are not counted: the framework leaves infrastructure RPCs out).
"""

from __future__ import annotations

from dataclasses import dataclass

# Grafana picks a rate window of at least 4 scrape intervals; prometheus_check.py
# substitutes a fixed window when it runs these queries against Prometheus itself.
RATE_WINDOW = "$__rate_interval"


@dataclass(frozen=True)
class Query:
    expr: str  # PromQL; `$job` stands for the layer's job label value
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str  # a Grafana unit id: reqps, ops, s, short
    queries: tuple[Query, ...]


@dataclass(frozen=True)
class LayerRow:
    job: str
    title: str
    probe: str
    panels: tuple[Panel, ...] = ()  # the layer's own figures, after the RPC panels


def rate(selector: str, by: str) -> str:
    return f"sum by ({by}) (rate({selector}[{RATE_WINDOW}]))"


def quantiles(histogram: str, labels: str, by: str = "") -> tuple[Query, ...]:
    group = f"le, {by}" if by else "le"
    suffix = f" {{{{{by}}}}}" if by else ""
    return tuple(
        Query(f"histogram_quantile({q}, {rate(f'{histogram}_bucket{{{labels}}}', group)})", f"p{round(q * 100)}{suffix}")
        for q in (0.5, 0.99)
    )


def rpc_panels() -> tuple[Panel, ...]:
    """RPC rate by method, errors by code, latency p50/p99: the same for every layer."""
    job = 'job="$job"'
    return (
        Panel("RPC rate by method", "reqps",
              (Query(rate(f"grpc_server_handled_total{{{job}}}", "grpc_method"), "{{grpc_method}}"),)),
        Panel("RPC errors by code", "reqps",
              (Query(rate(f'grpc_server_handled_total{{{job},grpc_code!="OK"}}', "grpc_code"), "{{grpc_code}}"),)),
        Panel("RPC latency", "s", quantiles("grpc_server_handling_seconds", job)),
    )


_J = 'job="$job"'

LAYER_ROWS: tuple[LayerRow, ...] = (
    LayerRow("layer1_discovery", "Layer 1 · Discovery", "GetAlerts", (
        Panel("Collections/s by trigger", "ops",
              (Query(rate(f"discovery_collections_total{{{_J}}}", "trigger"), "{{trigger}}"),)),
        Panel("Alerts/s by severity", "ops",
              (Query(rate(f"discovery_alerts_total{{{_J}}}", "severity"), "{{severity}}"),)),
    )),
    LayerRow("layer2_planning", "Layer 2 · Planning", "GetPlan", (
        Panel("Plans/s by kind", "ops", (Query(rate(f"planning_plans_total{{{_J}}}", "kind"), "{{kind}}"),)),
        Panel("Tasks per plan", "short", quantiles("planning_plan_tasks", _J)),
    )),
    LayerRow("layer3_validation", "Layer 3 · Validation", "GetVerdict", (
        Panel("Verdicts/s by subject and outcome", "ops",
              (Query(rate(f"validation_verdicts_total{{{_J}}}", "subject, valid"), "{{subject}} valid={{valid}}"),)),
    )),
    LayerRow("layer4_execution", "Layer 4 · Execution", "GetTask", (
        Panel("Tasks/s by final status", "ops",
              (Query(rate(f"layer4_tasks_total{{{_J}}}", "status"), "{{status}}"),)),
        Panel("KPIs/s published and dropped", "ops", (
            Query(f"sum(rate(layer4_kpi_published_total{{{_J}}}[{RATE_WINDOW}]))", "published"),
            Query(f"sum(rate(layer4_kpi_drops_total{{{_J}}}[{RATE_WINDOW}]))", "dropped"),
        )),
        Panel("Queue depth and running tasks", "short", (
            Query(f"sum(layer4_queue_depth{{{_J}}})", "queued"),
            Query(f"sum(layer4_running_tasks{{{_J}}})", "running"),
        )),
        Panel("Task latency (submit to final status)", "s", quantiles("layer4_task_latency_seconds", _J)),
    )),
)
