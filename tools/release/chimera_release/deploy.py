"""Deployment: the layers run locally from a manifest's exact binaries, or Kubernetes manifests.

- probes: a running layer's services (server reflection) and their health;
- `deploy --environment local`: every layer server from the manifest's binaries,
  with a canary that moves one layer at a time;
- `deploy --environment staging|production`: Kubernetes manifests, validated offline;
- `validate --check-health`: health and version of every layer, as JSON and HTML;
- teardown: the layers a release removes (its `affected` or `artifacts`
  document's `removed`) are stopped locally, or listed for deletion from Kubernetes.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import html
import json
import math
import os
import pathlib
import re
import signal
import subprocess
import time
from typing import Any, Sequence

import grpc
import kubernetes_validate
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from chimera.framework.processes import LOOPBACK, ProcessStack, ServerProcess, ServerSpec, free_ports, pid_alive
from chimera_release.documents import ARTIFACTS_SCHEMA, file_sha256, runfiles_digest
from chimera_release.errors import UsageError
from chimera_release.graph import AFFECTED_SCHEMA, classify, layer_of

# ---------------------------------------------------------------------------
# Removed layers: what the deploy plan tears down


def removed_layers(delta: dict[str, Any], source: str) -> dict[str, str]:
    """Layer -> its removed server label, from an `affected` report or an `artifacts` document.

    Only a layer's server runs; the other removed targets (libraries, tests,
    images) stop with the build and have nothing to tear down.
    """
    if delta.get("schema") == AFFECTED_SCHEMA:
        rule_classes = {t.get("label"): t.get("kind", "") for t in delta.get("affected", [])}
    elif delta.get("schema") == ARTIFACTS_SCHEMA:
        rule_classes = {a.get("label"): a.get("rule_class", "") for a in delta.get("artifacts", [])}
    else:
        raise UsageError(f"{source}: not a {AFFECTED_SCHEMA} or {ARTIFACTS_SCHEMA} document")
    removed = delta.get("removed")
    if not isinstance(removed, list) or not all(isinstance(label, str) for label in removed):
        raise UsageError(f"{source}: removed: expected a list of target labels")
    layers = {}
    for label in removed:
        layer = layer_of(label)
        if layer is not None and classify(label, rule_classes.get(label, "")) == "service":
            layers[layer] = label
    return dict(sorted(layers.items()))


# ---------------------------------------------------------------------------
# Probes

INFRASTRUCTURE_PREFIXES = ("grpc.",)


@dataclasses.dataclass
class Probe:
    target: str
    services: list[str]
    status: dict[str, str]
    error: str | None = None

    @property
    def healthy(self) -> bool:
        return self.error is None and bool(self.status) and all(s == "SERVING" for s in self.status.values())


def list_services(channel: grpc.Channel, timeout: float) -> list[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    for reply in stub.ServerReflectionInfo(iter([request]), timeout=timeout):
        return sorted(s.name for s in reply.list_services_response.service
                      if not s.name.startswith(INFRASTRUCTURE_PREFIXES))
    return []


def check_health(channel: grpc.Channel, service: str, timeout: float) -> str:
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def probe(target: str, timeout: float = 2.0) -> Probe:
    """The layer's own services and the health status of each, or the error."""
    with grpc.insecure_channel(target) as channel:
        try:
            services = list_services(channel, timeout)
            return Probe(target, services, {s: check_health(channel, s, timeout) for s in services})
        except grpc.RpcError as error:
            code = error.code().name if isinstance(error, grpc.Call) else "UNKNOWN"
            return Probe(target, [], {}, error=f"{code}: {error.details() if isinstance(error, grpc.Call) else error}")


# ---------------------------------------------------------------------------
# Local deployment
#
# Before anything starts, each binary and its runfiles are re-hashed against the
# manifest. Servers bind loopback only, on ports picked up front; a server flag
# `--<name>-target` is wired to the layer called `layerN_<name>`, so new layers
# need no change here. With a canary, the layers move one at a time: the new
# build starts next to the stable one, gets PERCENT of the probe traffic, and is
# promoted when it stays SERVING under the error budget, else stopped (rolled
# back) and the rollout ends.

_TARGET_FLAG = re.compile(r"--([a-z0-9-]+)-target\b")


class DeployError(RuntimeError):
    """A deployment step failed (digest mismatch, a server never SERVING)."""


@dataclasses.dataclass(frozen=True)
class LayerBinary:
    layer: str
    label: str
    executable: pathlib.Path
    sha256: str
    runfiles: dict[str, Any] | None

    @property
    def short_name(self) -> str:
        return self.layer.split("_", 1)[-1]


def layer_binaries(manifest: dict[str, Any]) -> list[LayerBinary]:
    binaries = []
    for deliverable in manifest["deliverables"]:
        if deliverable["kind"] != "service":
            continue
        executable = next((o for o in deliverable["outputs"] if "runfiles" in o), deliverable["outputs"][0])
        binaries.append(LayerBinary(layer=deliverable["layer"], label=deliverable["label"],
                                    executable=pathlib.Path(executable["location"]), sha256=executable["sha256"],
                                    runfiles=executable.get("runfiles")))
    return sorted(binaries, key=lambda b: b.layer)


def verify(binary: LayerBinary) -> None:
    """Raises DeployError unless the binary and its runfiles are the manifest's, byte for byte."""
    if not binary.executable.is_file():
        raise DeployError(f"{binary.label}: {binary.executable} is missing")
    actual = file_sha256(binary.executable)
    if actual != binary.sha256:
        raise DeployError(f"{binary.label}: sha256 {actual[:16]} of {binary.executable} is not the manifest's "
                          f"{binary.sha256[:16]}")
    if binary.runfiles is not None:
        runfiles = runfiles_digest(binary.executable)
        if runfiles != binary.runfiles:
            raise DeployError(f"{binary.label}: its runfiles differ from the manifest's")


def target_flags(binary: LayerBinary) -> list[str]:
    """The `--X-target` flags a server accepts (from its --help)."""
    result = subprocess.run([str(binary.executable), "--help"], capture_output=True, text=True, timeout=120)
    return sorted(set(_TARGET_FLAG.findall(result.stdout)))


@dataclasses.dataclass
class Instance:
    layer: str
    label: str
    sha256: str
    revision: str
    server: ServerProcess

    def as_json(self) -> dict[str, Any]:
        return {"layer": self.layer, "label": self.label, "sha256": self.sha256, "revision": self.revision,
                "target": self.server.target, "pid": self.server.process.pid, "log": str(self.server.log_path),
                "executable": self.server.spec.argv[0]}


class LocalDeployment:
    """The running layers of one deployment; stop() ends them all."""

    def __init__(self, run_dir: pathlib.Path, startup_timeout: float = 90.0) -> None:
        self.run_dir = run_dir
        self.processes = ProcessStack(run_dir, startup_timeout=startup_timeout, grace=10.0)
        self.instances: dict[str, Instance] = {}
        self.events: list[dict[str, Any]] = []
        self.layers: dict[str, LayerBinary] = {}  # every layer this deployment knows, for wiring

    def _specs(self, binaries: list[LayerBinary], suffix: str, targets: dict[str, str]) -> list[ServerSpec]:
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            flags = dict(zip([b.layer for b in binaries], pool.map(target_flags, binaries)))
        self.layers.update({b.layer: b for b in binaries})
        by_short_name = {b.short_name: b.layer for b in self.layers.values()}
        ports = free_ports(len(binaries))
        own = {b.layer: f"{LOOPBACK}:{port}" for b, port in zip(binaries, ports)}
        specs = []
        for binary, port in zip(binaries, ports):
            argv = [str(binary.executable), "--host", LOOPBACK, "--port", str(port), "--metrics-port", "off"]
            for name in flags[binary.layer]:
                peer = by_short_name.get(name.replace("-", "_"))
                if peer is not None:
                    argv += [f"--{name}-target", targets.get(peer) or own[peer]]
            # The health service is named per layer; reflection finds it once up.
            specs.append(ServerSpec(name=binary.layer + suffix, argv=tuple(argv), port=port,
                                    health_service=""))
        return specs

    def _wait_serving(self, server: ServerProcess, deadline: float) -> None:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise DeployError(f"{server.name} exited with status {server.process.returncode} before serving "
                                  f"(log: {server.log_path})")
            if probe(server.target, timeout=1.0).healthy:
                return
            time.sleep(0.2)
        raise DeployError(f"{server.name} did not report SERVING on {server.target} (log: {server.log_path})")

    def start(self, binaries: list[LayerBinary], revision: str) -> None:
        for binary in binaries:
            verify(binary)
        specs = self._specs(binaries, "", {})
        servers = [self.processes.launch(spec) for spec in specs]
        deadline = time.monotonic() + self.processes.startup_timeout
        for binary, server in zip(binaries, servers):
            self._wait_serving(server, deadline)
            self.instances[binary.layer] = Instance(binary.layer, binary.label, binary.sha256, revision, server)
            self.events.append({"event": "started", "layer": binary.layer, "target": server.target})

    def canary(self, binaries: list[LayerBinary], revision: str, percent: float, probes: int,
               max_error_rate: float) -> list[dict[str, Any]]:
        """Moves each layer to `binaries` in turn; stops at the first rollback."""
        results = []
        for binary in binaries:
            verify(binary)
            stable = self.instances.get(binary.layer)
            targets = {layer: instance.server.target for layer, instance in self.instances.items()}
            spec = self._specs([binary], "-canary", targets)[0]
            server = self.processes.launch(spec)
            outcome = {"layer": binary.layer, "percent": percent, "canary_target": server.target}
            try:
                self._wait_serving(server, time.monotonic() + self.processes.startup_timeout)
                errors, sent = _split_traffic(server.target, stable.server.target if stable else None, percent, probes)
                rate = errors / sent if sent else 1.0
                outcome.update({"canary_requests": sent, "canary_errors": errors, "error_rate": round(rate, 4)})
                if rate > max_error_rate:
                    raise DeployError(f"{binary.layer}: canary error rate {rate:.2%} over {max_error_rate:.2%}")
            except DeployError as error:
                _stop_one(server)
                outcome.update({"result": "rolled_back", "reason": str(error)})
                self.events.append({"event": "rolled_back", "layer": binary.layer, "reason": str(error)})
                results.append(outcome)
                break
            if stable is not None:
                _stop_one(stable.server)
            self.instances[binary.layer] = Instance(binary.layer, binary.label, binary.sha256, revision, server)
            outcome["result"] = "promoted"
            self.events.append({"event": "promoted", "layer": binary.layer, "target": server.target})
            results.append(outcome)
        return results

    def forget(self, layers: list[str]) -> None:
        """Wires no new server to `layers` (removed from the release); their running instances stay."""
        for layer in layers:
            self.layers.pop(layer, None)

    def tear_down(self, layers: dict[str, str]) -> list[dict[str, Any]]:
        """Stops the running instances of removed layers (layer -> removed label)."""
        results = []
        for layer, label in layers.items():
            instance = self.instances.pop(layer, None)
            self.layers.pop(layer, None)
            if instance is None:
                results.append({"layer": layer, "label": label, "result": "not_running"})
                continue
            _stop_one(instance.server)
            self.events.append({"event": "torn_down", "layer": layer, "target": instance.server.target})
            results.append({"layer": layer, "label": label, "result": "stopped", "target": instance.server.target})
        return results

    def state(self) -> dict[str, Any]:
        return {"schema": "chimera.release.deployment/v1", "environment": "local",
                "layers": [i.as_json() for _, i in sorted(self.instances.items())], "events": self.events}

    def write_state(self, path: pathlib.Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.state(), indent=2))

    def stop(self) -> None:
        self.processes.stop()


def _stop_one(server: ServerProcess) -> None:
    if server.process.poll() is None:
        try:
            os.killpg(server.process.pid, signal.SIGTERM)
            server.process.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()


def _split_traffic(canary: str, stable: str | None, percent: float, total: int) -> tuple[int, int]:
    """Sends `total` health probes, `percent` of them to the canary; (canary errors, canary requests)."""
    canary_services = probe(canary).services
    sent = errors = 0
    channels = {canary: grpc.insecure_channel(canary)}
    if stable is not None:
        channels[stable] = grpc.insecure_channel(stable)
    try:
        for index in range(total):
            # Request i goes to the canary when it crosses the next PERCENT step.
            to_canary = stable is None or int((index + 1) * percent / 100) > int(index * percent / 100)
            target = canary if to_canary else stable
            for service in canary_services or [""]:
                try:
                    status = check_health(channels[target], service, timeout=2.0)
                    failed = status != "SERVING"
                except grpc.RpcError:
                    failed = True
                if to_canary:
                    sent += 1
                    errors += int(failed)
    finally:
        for channel in channels.values():
            channel.close()
    return errors, sent


# ---------------------------------------------------------------------------
# Kubernetes
#
# Rendered into a directory, checked against the Kubernetes OpenAPI schemas with
# kubernetes-validate (strict: unknown fields are errors), never applied to a
# cluster by this tool.

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
        return app_name(self.layer)


TRACKS = ("stable", "canary")


def app_name(layer: str) -> str:
    return "chimera-" + layer.replace("_", "-")


def _config_name(app: str) -> str:
    return app + "-config"


def _deployment_name(app: str, track: str) -> str:
    return app if track == "stable" else f"{app}-{track}"


def teardown_objects(layer: str) -> list[dict[str, str]]:
    """Every object `render_kubernetes` can create for a layer: what removing the layer deletes."""
    app = app_name(layer)
    return [{"apiVersion": "v1", "kind": "ConfigMap", "name": _config_name(app)},
            {"apiVersion": "v1", "kind": "Service", "name": app},
            *({"apiVersion": "apps/v1", "kind": "Deployment", "name": _deployment_name(app, track)} for track in TRACKS)]


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
        "envFrom": [{"configMapRef": {"name": _config_name(spec.app)}}],
        "resources": {"requests": {"cpu": env.cpu, "memory": env.memory},
                      "limits": {"cpu": env.cpu_limit, "memory": env.memory_limit}},
        "readinessProbe": {**probe(), "periodSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {**probe(), "initialDelaySeconds": 10, "periodSeconds": 10, "failureThreshold": 3},
        "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True},
    }


def _deployment(spec: LayerSpec, env: Environment, image: str, track: str, replicas: int,
                weight: int) -> dict[str, Any]:
    name = _deployment_name(spec.app, track)
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


def render_kubernetes(specs: list[LayerSpec], env: Environment, revision: str, registry: str,
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
             "metadata": {"name": _config_name(spec.app), "labels": _labels(spec, "stable")},
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


def validate_kubernetes(files: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Every schema violation, as "file: kind/name: message" (empty when all are valid)."""
    problems = []
    for name, objects in files.items():
        for obj in objects:
            try:
                kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as error:
                problems.append(f"{name}: {obj['kind']}/{obj['metadata']['name']}: {error.message}")
    return problems


def write_kubernetes(files: dict[str, list[dict[str, Any]]], directory: pathlib.Path,
                     teardown: Sequence[dict[str, Any]] = ()) -> list[str]:
    """Writes one file per layer, weights.json and teardown.json (the objects of removed layers, to delete).

    A removed layer's file left from an earlier render is deleted, so that
    applying the directory never brings the layer back.
    """
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, objects in sorted(files.items()):
        (directory / name).write_text(yaml.safe_dump_all(objects, sort_keys=False))
        written.append(str(directory / name))
    (directory / "weights.json").write_text(json.dumps(
        {name: {o["metadata"]["name"]: int(o["metadata"]["annotations"]["chimera.dev/traffic-weight"])
                for o in objects if o["kind"] == "Deployment"} for name, objects in files.items()}, indent=2))
    for entry in teardown:
        (directory / f"{entry['layer']}.yaml").unlink(missing_ok=True)
    (directory / "teardown.json").write_text(json.dumps({"delete": list(teardown)}, indent=2))
    return written


# ---------------------------------------------------------------------------
# Validation of a running deployment

VALIDATION_SCHEMA = "chimera.release.validation/v1"


def check_deployment(state: dict[str, Any]) -> dict[str, Any]:
    layers = []
    for layer in state["layers"]:
        result = probe(layer["target"])
        executable = pathlib.Path(layer.get("executable", ""))
        binary_ok = executable.is_file() and file_sha256(executable) == layer["sha256"]
        layers.append({
            "layer": layer["layer"],
            "target": layer["target"],
            "process_alive": pid_alive(layer["pid"]),
            "services": result.status,
            "healthy": result.healthy,
            "error": result.error,
            "version": {"revision": layer["revision"], "sha256": layer["sha256"], "binary_matches": binary_ok},
        })
    healthy = bool(layers) and all(l["healthy"] and l["process_alive"] and l["version"]["binary_matches"]
                                   for l in layers)
    return {"schema": VALIDATION_SCHEMA, "environment": state["environment"], "checked_at": time.time(),
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
