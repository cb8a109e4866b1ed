"""`validate --check-health`: health and version of every layer of a deployment, as JSON and HTML."""

from __future__ import annotations

import html
import json
import os
import pathlib
import time
from typing import Any

from chimera_release.digests import file_sha256
from chimera_release.probes import probe

SCHEMA = "chimera.release.validation/v1"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check(state: dict[str, Any]) -> dict[str, Any]:
    layers = []
    for layer in state["layers"]:
        result = probe(layer["target"])
        executable = pathlib.Path(layer.get("executable", ""))
        binary_ok = executable.is_file() and file_sha256(executable) == layer["sha256"]
        layers.append({
            "layer": layer["layer"],
            "target": layer["target"],
            "process_alive": _alive(layer["pid"]),
            "services": result.status,
            "healthy": result.healthy,
            "error": result.error,
            "version": {"revision": layer["revision"], "sha256": layer["sha256"], "binary_matches": binary_ok},
        })
    healthy = bool(layers) and all(l["healthy"] and l["process_alive"] and l["version"]["binary_matches"]
                                   for l in layers)
    return {"schema": SCHEMA, "environment": state["environment"], "checked_at": time.time(),
            "healthy": healthy, "layers": layers}


def html_report(report: dict[str, Any]) -> str:
    rows = "\n".join(
        "<tr class='{cls}'><td>{layer}</td><td>{target}</td><td>{services}</td><td>{rev}</td><td>{sha}</td>"
        "<td>{ok}</td></tr>".format(
            cls="ok" if l["healthy"] else "bad", layer=html.escape(l["layer"]), target=html.escape(l["target"]),
            services=html.escape(", ".join(f"{k}: {v}" for k, v in l["services"].items()) or (l["error"] or "")),
            rev=html.escape(str(l["version"]["revision"])[:12]), sha=html.escape(l["version"]["sha256"][:16]),
            ok="healthy" if l["healthy"] else "UNHEALTHY")
        for l in report["layers"])
    verdict = "healthy" if report["healthy"] else "UNHEALTHY"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Chimera deployment: {verdict}</title>
<style>body{{font-family:sans-serif}} td,th{{padding:4px 8px;border-bottom:1px solid #ccc}}
.ok td:last-child{{color:#070}} .bad td:last-child{{color:#b00}}</style></head>
<body><h1>Chimera {html.escape(report["environment"])} deployment: {verdict}</h1>
<table><tr><th>layer</th><th>target</th><th>services</th><th>revision</th><th>sha256</th><th>status</th></tr>
{rows}
</table></body></html>
"""


def write_reports(report: dict[str, Any], directory: pathlib.Path) -> dict[str, str]:
    directory.mkdir(parents=True, exist_ok=True)
    json_path, html_path = directory / "validation.json", directory / "validation.html"
    json_path.write_text(json.dumps(report, indent=2))
    html_path.write_text(html_report(report))
    return {"json": str(json_path), "html": str(html_path)}
