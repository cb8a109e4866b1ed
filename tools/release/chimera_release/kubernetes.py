"""`deploy --environment staging|production`: Kubernetes manifests, validated offline.

Rendered into a directory, checked against the Kubernetes OpenAPI schemas with
kubernetes-validate (strict: unknown fields are errors), never applied to a
cluster by this tool.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import re
from typing import Any

import kubernetes_validate
import yaml

KUBERNETES_VERSION = "1.37.0"
GRPC_PORT = 50051
METRICS_PORT = 9090


@dataclasses.dataclass(frozen=True)
class Environment:
    name: str
    replicas: int
    cpu: str
    memory: str
    cpu_limit: str
    memory_limit: str


ENVIRONMENTS = {
    "staging": Environment("staging", replicas=2, cpu="100m", memory="256Mi", cpu_limit="1", memory_limit="512Mi"),
    "production": Environment("production", replicas=4, cpu="500m", memory="512Mi", cpu_limit="2",
                              memory_limit="1Gi"),
}


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    layer: str  # "layer1_discovery"
    service: str  # the gRPC service the probes check, e.g. "chimera.v1.DiscoveryService"
    peers: dict[str, str]  # flag stem ("discovery") -> layer it points at
    sha256: str
    image_digest: str  # the release manifest's image of the layer: "sha256:<hex>"

    @property
    def app(self) -> str:
        return "chimera-" + self.layer.replace("_", "-")


def proto_services(proto_texts: list[str]) -> list[str]:
    """Fully qualified service names declared in .proto sources."""
    names = []
    for text in proto_texts:
        package = re.search(r"^\s*package\s+([\w.]+)\s*;", text, re.M)
        for service in re.findall(r"^\s*service\s+(\w+)\s*\{", text, re.M):
            names.append(f"{package.group(1)}.{service}" if package else service)
    return sorted(names)


def layer_service(layer: str, services: list[str]) -> str:
    """The service named after the layer (layer1_discovery -> ...DiscoveryService), or "" (whole server)."""
    stem = layer.split("_", 1)[-1].replace("_", "").lower()
    for service in services:
        if service.rsplit(".", 1)[-1].lower().startswith(stem):
            return service
    return ""


def _labels(spec: LayerSpec, track: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": spec.app, "app.kubernetes.io/part-of": "chimera", "chimera.dev/track": track}


def _container(spec: LayerSpec, env: Environment, image: str) -> dict[str, Any]:
    args = ["--host", "0.0.0.0", "--port", str(GRPC_PORT), "--metrics-port", str(METRICS_PORT)]
    for stem, peer in sorted(spec.peers.items()):
        args += [f"--{stem.replace('_', '-')}-target", f"chimera-{peer.replace('_', '-')}:{GRPC_PORT}"]
    def probe() -> dict[str, Any]:  # a fresh dict each time: YAML would alias a shared one
        return {"grpc": {"port": GRPC_PORT, "service": spec.service}}

    return {
        "name": "server",
        "image": image,
        "args": args,
        "ports": [{"name": "grpc", "containerPort": GRPC_PORT}, {"name": "metrics", "containerPort": METRICS_PORT}],
        "envFrom": [{"configMapRef": {"name": spec.app + "-config"}}],
        "resources": {"requests": {"cpu": env.cpu, "memory": env.memory},
                      "limits": {"cpu": env.cpu_limit, "memory": env.memory_limit}},
        "readinessProbe": {**probe(), "periodSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {**probe(), "initialDelaySeconds": 10, "periodSeconds": 10, "failureThreshold": 3},
        "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True},
    }


def _deployment(spec: LayerSpec, env: Environment, image: str, track: str, replicas: int,
                weight: int) -> dict[str, Any]:
    name = spec.app if track == "stable" else f"{spec.app}-{track}"
    labels = _labels(spec, track)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels,
                     "annotations": {"chimera.dev/binary-sha256": spec.sha256, "chimera.dev/traffic-weight": str(weight)}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [_container(spec, env, image)]}},
        },
    }


def split_replicas(total: int, canary_percent: float) -> tuple[int, int]:
    """(stable, canary) replicas whose ratio approximates the canary weight; a canary gets at least one."""
    if canary_percent <= 0:
        return total, 0
    canary = min(total, max(1, math.floor(total * canary_percent / 100 + 0.5)))
    return total - canary, canary


def render(specs: list[LayerSpec], env: Environment, revision: str, registry: str,
           canary_percent: float) -> dict[str, list[dict[str, Any]]]:
    """File name -> the Kubernetes objects it holds, one file per layer.

    Each container names its image by the release manifest's digest (``repo@sha256:...``),
    the image ci/containers.sh ran, never by a tag that could move.
    """
    files = {}
    for spec in specs:
        image = f"{registry}/{spec.app}@{spec.image_digest}"
        stable_replicas, canary_replicas = split_replicas(env.replicas, canary_percent)
        weight = round(100 * canary_replicas / env.replicas) if canary_replicas else 0
        objects: list[dict[str, Any]] = [
            {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": spec.app + "-config", "labels": _labels(spec, "stable")},
             "data": {"CHIMERA_ENVIRONMENT": env.name, "CHIMERA_REVISION": revision,
                      "CHIMERA_BINARY_SHA256": spec.sha256, "CHIMERA_HEALTH_SERVICE": spec.service}},
            {"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": spec.app, "labels": {"app.kubernetes.io/name": spec.app}},
             # Selects both tracks: traffic splits by ready replicas, i.e. by the weights below.
             "spec": {"selector": {"app.kubernetes.io/name": spec.app},
                      "ports": [{"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc", "appProtocol": "grpc"}]}},
            _deployment(spec, env, image, "stable", stable_replicas, 100 - weight),
        ]
        if canary_replicas:
            objects.append(_deployment(spec, env, image, "canary", canary_replicas, weight))
        files[f"{spec.layer}.yaml"] = objects
    return files


def validate(files: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Every schema violation, as "file: kind/name: message" (empty when all are valid)."""
    problems = []
    for name, objects in files.items():
        for obj in objects:
            try:
                kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as error:
                problems.append(f"{name}: {obj['kind']}/{obj['metadata']['name']}: {error.message}")
    return problems


def write(files: dict[str, list[dict[str, Any]]], directory: pathlib.Path) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, objects in sorted(files.items()):
        (directory / name).write_text(yaml.safe_dump_all(objects, sort_keys=False))
        written.append(str(directory / name))
    (directory / "weights.json").write_text(json.dumps(
        {name: {o["metadata"]["name"]: int(o["metadata"]["annotations"]["chimera.dev/traffic-weight"])
                for o in objects if o["kind"] == "Deployment"} for name, objects in files.items()}, indent=2))
    return written
