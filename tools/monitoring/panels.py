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
    unit: str  # a Grafana unit id: reqps, ops, s, short, percentunit, currencyUSD
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
    LayerRow("layer5_refinement", "Layer 5 · Refinement", "AnalyzeExperiment", (
        Panel("KPI ingest/s: buffered, rejected, evicted", "ops", (
            Query(rate(f"layer5_kpis_ingested_total{{{_J}}}", "source"), "ingested {{source}}"),
            Query(rate(f"layer5_kpis_rejected_total{{{_J}}}", "reason"), "rejected {{reason}}"),
            Query(f"sum(rate(layer5_kpis_evicted_total{{{_J}}}[{RATE_WINDOW}]))", "evicted"),
            Query(f"sum(rate(layer5_kpi_stream_reconnects_total{{{_J}}}[{RATE_WINDOW}]))", "stream reconnects"),
        )),
        Panel("KPI reports buffered; layer-4 stream connected", "short", (
            Query(f"sum(layer5_kpis_buffered{{{_J}}})", "buffered"),
            Query(f"sum(layer5_kpi_stream_connected{{{_J}}})", "stream connected"),
        )),
        Panel("Experiments/s: created, observations", "ops", (
            Query(f"sum(rate(layer5_experiments_created_total{{{_J}}}[{RATE_WINDOW}]))", "created"),
            Query(f"sum(rate(layer5_experiment_observations_total{{{_J}}}[{RATE_WINDOW}]))", "observations"),
        )),
        Panel("Experiment decisions/s by decision", "ops",
              (Query(rate(f"layer5_experiment_decisions_total{{{_J}}}", "decision"), "{{decision}}"),)),
        Panel("Anomalies/s by method; evolution triggers/s", "ops", (
            Query(rate(f"layer5_anomalies_total{{{_J}}}", "method"), "anomaly {{method}}"),
            Query(rate(f"layer5_evolution_decisions_total{{{_J}}}", "trigger"), "evolve {{trigger}}"),
        )),
    )),
    LayerRow("layer6_evolution", "Layer 6 · Evolution", "SuggestOperators", (
        Panel("Evaluations/s: made here (server) or told through Step (client)", "ops",
              (Query(rate(f"evolution_evaluations_total{{{_J}}}", "source"), "{{source}}"),)),
        Panel("Runs finished/s by algorithm", "ops",
              (Query(rate(f"evolution_runs_total{{{_J}}}", "algorithm"), "{{algorithm}}"),)),
        Panel("Run duration (Evolve, StreamRun)", "s",
              quantiles("grpc_server_handling_seconds", f'{_J},grpc_method=~"Evolve|StreamRun"', "grpc_method")),
        Panel("Run starts and steps/s (StartRun, Step)", "ops", (Query(
            rate(f'grpc_server_handled_total{{{_J},grpc_method=~"StartRun|Step",grpc_code="OK"}}', "grpc_method"),
            "{{grpc_method}}"),)),
    )),
    LayerRow("layer7_genetics", "Layer 7 · Genetics", "GetGenome", (
        Panel("Generations stored/s by kind", "ops",
              (Query(rate(f"genetics_generations_total{{{_J}}}", "kind"), "{{kind}}"),)),
        Panel("Genomes stored/s; evaluations received/s", "ops", (
            Query(f"sum(rate(genetics_genomes_stored_total{{{_J}}}[{RATE_WINDOW}]))", "genomes stored"),
            Query(f"sum(rate(genetics_evaluations_total{{{_J}}}[{RATE_WINDOW}]))", "evaluations"),
        )),
        Panel("Deployments/s (DeployBest)", "ops",
              (Query(f"sum(rate(genetics_deployments_total{{{_J}}}[{RATE_WINDOW}]))", "deployed"),)),
        Panel("Generation latency (RunGeneration)", "s",
              quantiles("grpc_server_handling_seconds", f'{_J},grpc_method="RunGeneration"')),
    )),
    LayerRow("layer8_resources", "Layer 8 · Resources", "GetInventory", (
        Panel("Allocations/s: granted by layer, refused by reason, released", "ops", (
            Query(rate(f"layer8_allocations_total{{{_J}}}", "layer"), "granted {{layer}}"),
            Query(rate(f"layer8_refusals_total{{{_J}}}", "reason"), "refused {{reason}}"),
            Query(f"sum(rate(layer8_releases_total{{{_J}}}[{RATE_WINDOW}]))", "released"),
        )),
        Panel("Lease expiries/s by cause", "ops",
              (Query(rate(f"layer8_lease_expiries_total{{{_J}}}", "cause"), "{{cause}}"),)),
        Panel("Job queue depth", "short", (Query(f"sum(layer8_queued_jobs{{{_J}}})", "queued"),)),
        Panel("Jobs/s by state", "ops", (Query(rate(f"layer8_jobs_total{{{_J}}}", "status"), "{{status}}"),)),
        Panel("Cost per hour: active allocations, granted", "currencyUSD", (
            Query(f"sum(layer8_active_cost_usd_per_hour{{{_J}}})", "active"),
            Query(f"sum(rate(layer8_cost_usd_total{{{_J}}}[{RATE_WINDOW}])) * 3600", "granted"),
        )),
        Panel("Pool in use by resource", "percentunit", (Query(
            f"sum by (resource) (layer8_allocated{{{_J}}}) / sum by (resource) (layer8_capacity{{{_J}}})",
            "{{resource}}"),)),
    )),
)
