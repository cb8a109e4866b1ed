"""The eight layer images as podman containers, the main job against them, the state kept.

    containers --images bazel-bin/tools/oci --main-job bazel-bin/tools/main/main_job \
        [--ran-out ran.json] [--startup-timeout S] -- [main job flags]

1. Each layer's OCI layout (``<images>/<layer>``, the layers of
   ``//tools/main:stack``'s table) is pulled into podman's storage; the stored
   manifest digest must be the one the build recorded (``<layer>.digest``).
2. Each runs as a container: the image's user and command, a read-only root
   filesystem, the host's loopback (``--network host``; every server is told
   ``--host 127.0.0.1``), a fresh named volume on each of the image's Volumes
   (layer 7's genome store, layer 8's pooled storage), and the flags of the
   stack's table: gRPC ports from ``stack.free_ports``, metrics off, each layer
   pointed at the layers it calls.
3. Once all eight answer a gRPC health check SERVING, the main job runs its plan
   and closed loop against them (``--target``, one per layer).
4. Every container is stopped (SIGTERM; each must exit 0) and removed; layer 7's
   volume must still hold the genome store with the run's genomes in it. Then the
   volumes and images are removed.

``--ran-out`` gets each image's manifest digest as podman ran it. Exit status 0
when all of that held, 1 on any failure (one line naming it, the failing
container's last log lines above it), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tools.main import stack

LOOPBACK = "127.0.0.1"
GENETICS = "layer7_genetics"
STORE = "genomes.sqlite"


class ContainersFailed(Exception):
    """One line: what failed."""


@dataclass
class Container:
    layer: stack.Layer
    image_id: str
    digest: str
    port: int
    volumes: dict[str, str] = field(default_factory=dict)  # path in the image -> volume name
    name: str = ""

    @property
    def target(self) -> str:
        return f"{LOOPBACK}:{self.port}"


def podman(*args: str, check: bool = True) -> str:
    result = subprocess.run(["podman", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise ContainersFailed(f"podman {' '.join(args[:3])}...: {result.stderr.strip().splitlines()[-1:]}")
    return result.stdout.strip()


def image_config(layout: Path) -> dict:
    index = json.loads((layout / "index.json").read_text())
    blob = lambda digest: json.loads((layout / "blobs" / Path(*digest.split(":"))).read_text())  # noqa: E731
    return blob(blob(index["manifests"][0]["digest"])["config"]["digest"])["config"]


def load(images: Path, layer: stack.Layer, port: int) -> Container:
    """Pulls the layout into podman's storage; the stored digest must be the build's."""
    layout = images / layer.name
    built = (images / f"{layer.name}.digest").read_text().strip()
    image_id = podman("pull", "-q", f"oci:{layout}:latest").splitlines()[-1]
    stored = podman("image", "inspect", "--format", "{{.Digest}}", image_id)
    if stored != built:
        raise ContainersFailed(f"{layer.name}: podman stored {stored}, the build recorded {built}")
    return Container(layer, image_id, built, port)


def start(container: Container, ports: dict[str, int], run: str, cmd: list[str], volumes: list[str]) -> None:
    container.name = f"chimera-{run}-{container.layer.name}"
    mounts = []
    for path in volumes:
        volume = f"{container.name}-{Path(path).name}"
        podman("volume", "create", volume)
        container.volumes[path] = volume
        mounts += ["--volume", f"{volume}:{path}"]
    flags = ["--host", LOOPBACK, "--port", str(container.port), "--metrics-port", "off"]
    for flag, upstream in container.layer.upstreams:
        flags += [flag, f"{LOOPBACK}:{ports[upstream]}"]
    podman("run", "--detach", "--name", container.name, "--network", "host", "--read-only",
           *mounts, container.image_id, *cmd, *flags)


def wait_serving(containers: list[Container], timeout: float) -> float:
    started = time.monotonic()
    for container in containers:
        left = timeout - (time.monotonic() - started)
        with grpc.insecure_channel(container.target) as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=max(left, 1), wait_for_ready=True)
            except grpc.RpcError as exc:
                raise ContainersFailed(f"{container.name}: not SERVING within {timeout:g} s ({exc.code().name})") from None
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            raise ContainersFailed(f"{container.name}: health {reply.status}")
    return time.monotonic() - started


def stop(containers: list[Container]) -> dict[str, int]:
    statuses = {}
    for container in containers:
        if not container.name:
            continue
        podman("stop", "--time", "15", container.name, check=False)
        status = podman("inspect", "--format", "{{.State.ExitCode}}", container.name, check=False)
        statuses[container.layer.name] = int(status) if status.lstrip("-").isdigit() else -1
    return statuses


def genome_counts(container: Container) -> dict[str, int]:
    """Rows of layer 7's store in its volume (read after the container is gone)."""
    (volume,) = container.volumes.values()
    store = Path(podman("volume", "inspect", "--format", "{{.Mountpoint}}", volume)) / STORE
    if not store.is_file():
        raise ContainersFailed(f"{container.name}: volume {volume} has no {STORE} after the containers stopped")
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        return {table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in ("generations", "genomes")}


def logs_tail(container: Container, lines: int = 15) -> str:
    result = subprocess.run(["podman", "logs", "--tail", str(lines), container.name], capture_output=True, text=True)
    return (result.stdout + result.stderr).strip()


def run(args: argparse.Namespace) -> int:
    run = uuid.uuid4().hex[:8]
    ports = dict(zip((layer.name for layer in stack.LAYERS), stack.free_ports(len(stack.LAYERS)), strict=True))
    containers: list[Container] = []
    failure = ""
    with ExitStack() as cleanup:
        cleanup.callback(lambda: [podman("rmi", "--force", c.image_id, check=False) for c in containers])
        cleanup.callback(lambda: [podman("volume", "rm", "--force", v, check=False)
                                  for c in containers for v in c.volumes.values()])
        cleanup.callback(lambda: [podman("rm", "--force", c.name, check=False) for c in containers if c.name])
        try:
            began = time.monotonic()
            for layer in stack.LAYERS:
                containers.append(load(args.images, layer, ports[layer.name]))
            print(f"containers: {len(containers)} images pulled from their OCI layouts in "
                  f"{time.monotonic() - began:.1f} s, digests as built", flush=True)
            for container in containers:
                config = image_config(args.images / container.layer.name)
                start(container, ports, run, config.get("Cmd", []), sorted(config.get("Volumes", {})))
            serving = wait_serving(containers, args.startup_timeout)
            print(f"containers: all {len(containers)} SERVING in {serving:.1f} s "
                  f"(read-only rootfs, user {config['User']}, volumes: "
                  f"{', '.join(p for c in containers for p in c.volumes)})", flush=True)
            targets = [f"--target={c.layer.name}={c.target}" for c in containers]
            job = subprocess.run([str(args.main_job), *targets, *args.main_job_args])
            if job.returncode != 0:
                raise ContainersFailed(f"the main job against the containers exited {job.returncode}")
            exited = [c.name for c in containers
                      if podman("inspect", "--format", "{{.State.Running}}", c.name) != "true"]
            if exited:
                raise ContainersFailed(f"containers exited during the run: {', '.join(exited)}")
        except ContainersFailed as exc:
            failure = str(exc)
            for container in containers:
                if container.name and podman("inspect", "--format", "{{.State.Running}}", container.name,
                                             check=False) != "true":
                    print(f"--- {container.name} (exited):\n{logs_tail(container)}", file=sys.stderr)
        statuses = stop(containers)
        unclean = {name: status for name, status in statuses.items() if status != 0}
        if not failure and unclean:
            failure = f"containers did not exit 0 on SIGTERM: {unclean}"
        for container in containers:
            podman("rm", container.name, check=False)
        if not failure:
            genetics = next(c for c in containers if c.layer.name == GENETICS)
            try:
                counts = genome_counts(genetics)
            except (ContainersFailed, sqlite3.Error) as exc:
                failure = f"layer 7's store: {exc}"
            else:
                if not counts["genomes"]:
                    failure = f"layer 7's volume kept {STORE}, but with no genomes: {counts}"
                else:
                    print(f"containers: stopped ({len(statuses)} exited 0); layer 7's volume kept {STORE}: "
                          f"{counts['genomes']} genomes, {counts['generations']} generations", flush=True)
        if args.ran_out is not None and not failure:
            args.ran_out.write_text(json.dumps({c.layer.name: c.digest for c in containers}, indent=2) + "\n")
    if failure:
        print(f"containers: FAILED: {failure}", file=sys.stderr)
        return 1
    print("containers: OK")
    return 0


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="containers", description=__doc__.splitlines()[0])
    p.add_argument("--images", type=Path, required=True, help="the folder of the layouts (bazel-bin/tools/oci)")
    p.add_argument("--main-job", type=Path, required=True, help="the main job's binary")
    p.add_argument("--ran-out", type=Path, help="write {layer: manifest digest that ran} here")
    p.add_argument("--startup-timeout", type=float, default=180.0, help="seconds for all eight to serve")
    p.add_argument("main_job_args", nargs="*", help="after --: flags for the main job")
    args = p.parse_args(argv)
    missing = [f"{args.images}/{layer.name}" for layer in stack.LAYERS if not (args.images / layer.name / "index.json").is_file()]
    if missing:
        p.error(f"no OCI layout at {', '.join(missing)} (bazel build //tools/oci:images)")
    if not args.main_job.is_file():
        p.error(f"--main-job {args.main_job}: not a file (bazel build //tools/main:main_job)")
    return run(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
