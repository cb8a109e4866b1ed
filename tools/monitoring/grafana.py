"""Generates the Grafana dashboard (JSON model, schemaVersion 39) from panels.LAYER_ROWS:
one collapsible row per layer, RPC panels first, then the layer's own figures.

    bazel run //tools/monitoring:grafana_dashboard -- --out /tmp/chimera.json

The data source is a dashboard variable (`DS_PROMETHEUS`), so the file imports into any
Grafana with a Prometheus data source; `$job` is repeated per row as a constant.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tools.monitoring.panels import LAYER_ROWS, LayerRow, Panel, rpc_panels

DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
PANEL_WIDTH = 8  # three panels per line on Grafana's 24-column grid
PANEL_HEIGHT = 7
UID = "chimera-layers"


def _panel(panel: Panel, job: str, panel_id: int, x: int, y: int) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": panel.title,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": PANEL_WIDTH, "h": PANEL_HEIGHT},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE,
             "expr": query.expr.replace("$job", job), "legendFormat": query.legend}
            for i, query in enumerate(panel.queries)
        ],
    }


def dashboard(rows: tuple[LayerRow, ...] = LAYER_ROWS) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    y = 0
    for row in rows:
        panels.append({"id": len(panels) + 1, "type": "row", "title": row.title, "collapsed": False,
                       "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []})
        y += 1
        for i, panel in enumerate((*rpc_panels(), *row.panels)):
            x = (i * PANEL_WIDTH) % 24
            if i and x == 0:
                y += PANEL_HEIGHT
            panels.append(_panel(panel, row.job, len(panels) + 1, x, y))
        y += PANEL_HEIGHT
    return {
        "uid": UID,
        "title": "Chimera layers",
        "tags": ["chimera", "grpc"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": [{
            "name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource", "query": "prometheus",
        }]},
        "panels": panels,
    }


def queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every query on the dashboard."""
    return [(p["title"], t["expr"]) for p in board["panels"] for t in p.get("targets", [])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="grafana_dashboard", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="where to write the dashboard JSON")
    args = parser.parse_args(argv)
    try:
        args.out.write_text(json.dumps(dashboard(), indent=2) + "\n")
    except OSError as err:
        print(f"grafana_dashboard: cannot write {args.out}: {err.strerror}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
