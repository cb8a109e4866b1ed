"""The generated Grafana dashboard: one row per layer, RPC panels in each, and every
query names a metric that layer (or the framework, for all layers) registers in its
sources. No server runs here; prometheus_test.py runs the queries for real."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tools.main import stack
from tools.monitoring import exported, grafana, panels, prometheus
from tools.host_tools.host_tool import recorded
from tools.testing import optional

ROOT = Path(os.environ.get("TEST_SRCDIR", ".")) / os.environ.get("TEST_WORKSPACE", "chimera")
BUILT = ROOT / "tools/monitoring/chimera_layers.json"


@pytest.fixture(scope="module")
def owners() -> dict[str, set[str]]:
    files = sorted(ROOT.glob("layers/**/*.py")) + sorted(ROOT.glob("py/chimera/framework/**/*.py"))
    return exported.by_owner(files, ROOT)


def test_sources_register_the_known_names(owners: dict[str, set[str]]) -> None:
    assert {"grpc_server_handled_total", "grpc_server_started_total",
            "grpc_server_handling_seconds_bucket"} <= owners[exported.FRAMEWORK]
    assert {"layer4_tasks_total", "layer4_queue_depth", "layer4_task_latency_seconds_count"} <= owners["layer4_execution"]
    assert "discovery_collections_total" in owners["layer1_discovery"]
    assert {"layer5_kpis_ingested_total", "layer5_experiment_decisions_total",
            "layer5_anomalies_total"} <= owners["layer5_refinement"]
    assert "evolution_runs_total" in owners["layer6_evolution"]
    assert "genetics_generations_total" in owners["layer7_genetics"]
    assert {"layer8_allocations_total", "layer8_lease_expiries_total", "layer8_queued_jobs",
            "layer8_cost_usd_total"} <= owners["layer8_resources"]


def test_all_eight_layers_have_a_row_with_its_probe() -> None:
    rows = {r.job: r for r in panels.LAYER_ROWS}
    layers = sorted(p.name for p in ROOT.glob("layers/layer*_*") if p.is_dir())
    assert layers == [f"layer{n}_{name}" for n, name in enumerate(
        ("discovery", "planning", "validation", "execution", "refinement", "evolution", "genetics", "resources"), 1)]
    assert sorted(rows) == layers
    for layer in layers:  # the probe is a unary-unary method of the layer's service
        stubs = sorted(ROOT.glob(f"proto/chimera/v1/{layer.split('_', 1)[1]}_pb2_grpc.py"))
        assert len(stubs) == 1, f"{layer}: no generated gRPC stub in the runfiles"
        assert f"self.{rows[layer].probe} = channel.unary_unary(" in stubs[0].read_text(), (layer, rows[layer].probe)


def test_every_running_layer_has_a_row() -> None:
    rows = [r.job for r in panels.LAYER_ROWS]
    assert len(rows) == len(set(rows))
    assert {layer.name for layer in stack.LAYERS} <= set(rows)


def test_every_query_names_a_metric_its_layer_exports(owners: dict[str, set[str]]) -> None:
    board = grafana.dashboard()
    for row in panels.LAYER_ROWS:
        known = owners.get(row.job, set()) | owners[exported.FRAMEWORK]
        rendered = grafana.dashboard((row,))
        for title, expr in grafana.queries(rendered):
            names = exported.selector_names(expr)
            assert names, f"{row.job} / {title}: {expr} selects no metric"
            assert names <= known, f"{row.job} / {title}: {sorted(names - known)} not registered by {row.job}"
            assert f'job="{row.job}"' in expr
    assert len(grafana.queries(board)) == sum(len(grafana.queries(grafana.dashboard((r,)))) for r in panels.LAYER_ROWS)


def test_every_query_parses(tmp_path: Path) -> None:
    """Prometheus's own parser (promtool check rules, offline), each query as a recording rule."""
    promtool = recorded("promtool")
    optional.require(promtool.missing)
    assert promtool.path is not None
    rules = [{"record": f"dashboard:query{i}", "expr": expr.replace(panels.RATE_WINDOW, "1m")}
             for i, (_, expr) in enumerate(grafana.queries(grafana.dashboard()))]
    file = tmp_path / "dashboard_rules.yml"
    file.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))  # JSON is YAML
    result = subprocess.run([promtool.path, "check", "rules", str(file)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_layout_rows_panels_and_units() -> None:
    board = grafana.dashboard()
    rows = [p for p in board["panels"] if p["type"] == "row"]
    assert [r["title"] for r in rows] == [r.title for r in panels.LAYER_ROWS]
    titles_after_each_row: list[list[str]] = []
    for p in board["panels"]:
        if p["type"] == "row":
            titles_after_each_row.append([])
        else:
            titles_after_each_row[-1].append(p["title"])
            assert p["fieldConfig"]["defaults"]["unit"]
    for titles in titles_after_each_row:
        assert titles[:3] == ["RPC rate by method", "RPC errors by code", "RPC latency"]
        assert len(titles) > 3  # each layer shows figures of its own
    cells = set()
    for p in board["panels"]:
        g = p["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"panel {p['title']!r} overlaps another"
                cells.add((x, y))
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])


def test_the_built_file_shows_every_running_layer_from_prometheus() -> None:
    """The file Grafana loads (the genrule's output, written by the CLI), read on its
    own terms against the main job's layer table, not against the function that made it."""
    board = json.loads(BUILT.read_text())
    assert board["uid"] == "chimera-layers" and board["schemaVersion"] >= 36
    rows = [p for p in board["panels"] if p["type"] == "row"]
    running = sorted(layer.name for layer in stack.LAYERS)
    assert len(rows) == len(running) == 8
    jobs: set[str] = set()
    for panel in (p for p in board["panels"] if p["type"] != "row"):
        assert panel["datasource"]["type"] == "prometheus", panel["title"]
        assert panel["targets"], f"{panel['title']}: no query"
        for target in panel["targets"]:
            found = re.findall(r'job="([^"]+)"', target["expr"])
            assert found, f"{panel['title']}: {target['expr']} selects no job"
            jobs.update(found)
    assert sorted(jobs) == running


def test_scrape_config_has_one_loopback_job_per_layer() -> None:
    config = prometheus.scrape_config({"layer2_planning": "127.0.0.1:9102", "layer1_discovery": "127.0.0.1:9101"})
    assert [j["job_name"] for j in config["scrape_configs"]] == ["layer1_discovery", "layer2_planning"]
    assert config["scrape_configs"][0]["static_configs"] == [{"targets": ["127.0.0.1:9101"]}]
    with pytest.raises(ValueError, match="not on loopback"):
        prometheus.scrape_config({"layer1_discovery": "10.0.0.5:9101"})
