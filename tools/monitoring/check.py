"""Prometheus scraping the running layers, checked through its own HTTP API.

    bazel run //tools/monitoring:prometheus_check -- [--out F.json] [--hold SECONDS]

Starts the eight layers exactly as the main job does (tools/main/stack.py, each with its
metrics port), then Debian's prometheus on loopback with a scrape config generated for
every running layer, and checks:

  1. every layer's target is `up`;
  2. a known counter moved by exactly what was sent: `grpc_server_handled_total` of
     each layer's probe method (panels.LayerRow.probe, called N times with an empty
     request), by the codes the layer answered;
  3. every query of the generated Grafana dashboard is valid PromQL to Prometheus,
     and each layer's "RPC errors by code" panel shows a rate for every non-OK code
     the probes got back;
  4. every series Prometheus scraped from a layer is a name the sources register
     (exported.py), so the dashboard test's static list is the real one.

Exit 0 all held, 1 a check failed, 2 prometheus is missing (say so; CI installs it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from tools.main import stack as stack_mod  # the main job's own way of starting the layers
from tools.monitoring import exported, grafana, panels
from tools.monitoring.prometheus import Prometheus, PrometheusError, find_binary

# What Grafana's $__rate_interval becomes when Prometheus runs the dashboard's queries.
RATE_WINDOW = "30s"


@dataclass
class LayerTarget:
    job: str
    grpc_target: str
    metrics_target: str
    service: str  # the layer's gRPC service, e.g. chimera.v1.PlanningService


@dataclass
class Outcome:
    failures: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures


def _probe(layer: LayerTarget, method: str, count: int) -> dict[str, int]:
    """`count` calls of /service/method with an empty request; replies by status code."""
    codes: dict[str, int] = {}
    with grpc.insecure_channel(layer.grpc_target) as channel:
        call = channel.unary_unary(f"/{layer.service}/{method}")  # raw bytes both ways
        for _ in range(count):
            try:
                call(b"", timeout=5)
                code = grpc.StatusCode.OK
            except grpc.RpcError as err:
                code = err.code()
            codes[code.name] = codes.get(code.name, 0) + 1
    return codes


def run_checks(prom: Prometheus, layers: list[LayerTarget], sources_root: Path | None,
               rpcs: int = 5, timeout: float = 30.0) -> Outcome:
    out = Outcome()
    jobs = {layer.job for layer in layers}
    targets = prom.wait_targets_up(jobs, timeout)
    out.figures["targets"] = {job: targets[job]["health"] for job in sorted(jobs)}

    probes = {row.job: row.probe for row in panels.LAYER_ROWS}
    missing = sorted(jobs - set(probes))
    if missing:
        out.failures.append(f"layers without a row in tools/monitoring/panels.py: {missing}")
    probed = [layer for layer in layers if layer.job in probes]
    # One call first, scraped, so each code's series exists before the counted calls:
    # Prometheus's rate() cannot see the increase that creates a series.
    for layer in probed:
        _probe(layer, probes[layer.job], 1)
    prom.wait_fresh_scrapes([l.job for l in probed], timeout)
    before = {l.job: prom.handled_by_code(l.job, probes[l.job]) for l in probed}
    answered = {l.job: _probe(l, probes[l.job], rpcs) for l in probed}
    prom.wait_fresh_scrapes([l.job for l in probed], timeout)
    moved: dict[str, dict[str, float]] = {}
    for layer in probed:
        after = prom.handled_by_code(layer.job, probes[layer.job])
        delta = {c: n - before[layer.job].get(c, 0.0) for c, n in after.items()}
        moved[layer.job] = {c: d for c, d in delta.items() if d}
        if moved[layer.job] != {c: float(n) for c, n in answered[layer.job].items()}:
            out.failures.append(f"{layer.job}: grpc_server_handled_total{{grpc_method={probes[layer.job]!r}}} moved by "
                                f"{moved[layer.job]}, the probes got {answered[layer.job]}")
    out.figures["probe_replies"] = answered
    out.figures["handled_moved"] = moved

    board = grafana.dashboard(tuple(r for r in panels.LAYER_ROWS if r.job in jobs))
    for title, expr in grafana.queries(board):
        try:
            result = prom.query(expr.replace(panels.RATE_WINDOW, RATE_WINDOW))
        except PrometheusError as err:
            out.failures.append(f"dashboard panel {title!r}: Prometheus rejects {expr!r}: {err}")
            continue
        if title == "RPC errors by code":
            job = next(l.job for l in probed if f'job="{l.job}"' in expr)
            rates = {r["metric"].get("grpc_code"): float(r["value"][1]) for r in result}
            errors = {c for c in answered[job] if c != "OK"}
            if not all(rates.get(c, 0) > 0 for c in errors):
                out.failures.append(f"{expr}: no rate for {sorted(errors)} (got {rates})")
    out.figures["dashboard_queries"] = len(grafana.queries(board))

    if sources_root is not None:
        files = sorted(sources_root.glob("layers/**/*.py")) + sorted(sources_root.glob("py/chimera/framework/**/*.py"))
        owners = exported.by_owner(files, sources_root)
        for job in sorted(jobs):
            series = prom.api("series", **{"match[]": f'{{job="{job}"}}'})
            scraped = {s["__name__"] for s in series} - _PROMETHEUS_OWN
            known = owners.get(job, set()) | owners.get(exported.FRAMEWORK, set())
            unknown = sorted(scraped - known)
            if unknown:
                out.failures.append(f"{job}: scraped series the sources do not register: {unknown}")
            out.figures.setdefault("series_scraped", {})[job] = len(scraped)
    return out


# Series Prometheus adds to every target itself.
_PROMETHEUS_OWN = frozenset({
    "up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
})


def _layer_targets(stack: stack_mod.LayerStack) -> list[LayerTarget]:
    metrics = stack.metrics_targets()
    return [
        LayerTarget(name, server.target, metrics[name], server.spec.health_service)
        for name, server in stack.servers.items() if name in metrics
    ]


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="prometheus_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="write the figures and failures as JSON here")
    parser.add_argument("--run-dir", type=Path, help="server and prometheus logs (default: a temporary folder)")
    parser.add_argument("--hold", type=float, default=0.0, help="keep everything running this many seconds after the checks")
    parser.add_argument("--rpcs", type=int, default=5, help="unknown-service health checks per layer")
    args = parser.parse_args(argv)
    binary = find_binary()
    if binary is None:
        print("prometheus_check: no `prometheus` on PATH or in /usr/bin; install Debian's: "
              "apt-get install prometheus", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="chimera-prom-") as tmp:
        run_dir = args.run_dir or Path(tmp)
        try:
            with stack_mod.layer_stack(run_dir / "layers", metrics=True) as stack:
                layers = _layer_targets(stack)
                with Prometheus.start(binary, {l.job: l.metrics_target for l in layers}, run_dir / "prometheus") as prom:
                    outcome = run_checks(prom, layers, _sources_root(), args.rpcs)
                    print(f"prometheus {prom.url}: " + ", ".join(f"{job} {state}" for job, state in outcome.figures["targets"].items()))
                    if args.hold > 0:
                        print(f"holding for {args.hold:g} s (Ctrl-C to stop)")
                        time.sleep(args.hold)
        except (PrometheusError, stack_mod.StackError) as err:
            print(f"prometheus_check: {err}", file=sys.stderr)
            return 1
    for line in outcome.failures:
        print(f"FAIL: {line}", file=sys.stderr)
    print(json.dumps(outcome.figures, sort_keys=True))
    if args.out:
        args.out.write_text(json.dumps({"ok": outcome.ok, "failures": outcome.failures, **outcome.figures}, indent=2) + "\n")
    return 0 if outcome.ok else 1


def _sources_root() -> Path | None:
    """The workspace root in the runfiles (layer and framework sources are data of the servers)."""
    here = Path(__file__).absolute().parents[2]
    return here if (here / "py/chimera/framework").is_dir() else None


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
