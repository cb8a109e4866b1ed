"""`deploy --environment local`: every layer server from the manifest's exact binaries.

Before anything starts, each binary and its runfiles are re-hashed against the
manifest. Servers bind loopback only, on ports picked up front; a server flag
`--<name>-target` is wired to the layer called `layerN_<name>`, so new layers
need no change here. With a canary, the layers move one at a time: the new
build starts next to the stable one, gets PERCENT of the probe traffic, and is
promoted when it stays SERVING under the error budget, else stopped (rolled
back) and the rollout ends.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import pathlib
import re
import signal
import subprocess
import time
from typing import Any

import grpc

from chimera_release.digests import file_sha256, runfiles_digest
from chimera_release.probes import check_health, probe
from chimera.framework.processes import LOOPBACK, ProcessStack, ServerProcess, ServerSpec, free_ports

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
