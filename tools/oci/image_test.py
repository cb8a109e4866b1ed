"""Each layer's OCI image, checked with Debian's umoci and skopeo: the layout is
valid (every blob is the digest it is named by), skopeo reads the manifest digest the
build recorded and the labels, umoci unpacks it into a runtime bundle whose entrypoint
exists, the tar layers are deterministic (sorted, mtime 0, owner 0), and the unpacked
server answers a health check when its entrypoint runs with Debian 12's python3.11 (the
interpreter the distroless base provides at the same path)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(os.environ.get("TEST_SRCDIR", ".")) / os.environ.get("TEST_WORKSPACE", "chimera")
IMAGES = sorted(p.parent for p in (ROOT / "tools/oci").glob("*/oci-layout"))
UMOCI, SKOPEO = shutil.which("umoci"), shutil.which("skopeo")
pytestmark = pytest.mark.skipif(
    not (UMOCI and SKOPEO), reason="Debian's umoci and skopeo are not installed (apt-get install umoci skopeo); CI installs them")
APP_ROOT = "/app/runfiles"
# Layer 4 refuses to start without its layer-3 gate; no layer 3 runs here.
RUN_FLAGS = {"layer4_execution": ["--trust-unvalidated-modules"]}


def _blob(layout: Path, digest: str) -> bytes:
    algorithm, hexdigest = digest.split(":")
    return (layout / "blobs" / algorithm / hexdigest).read_bytes()


def _manifest(layout: Path) -> tuple[str, dict, dict]:
    index = json.loads((layout / "index.json").read_text())
    (descriptor,) = index["manifests"]
    assert descriptor["annotations"]["org.opencontainers.image.ref.name"] == "latest"
    manifest = json.loads(_blob(layout, descriptor["digest"]))
    return descriptor["digest"], manifest, json.loads(_blob(layout, manifest["config"]["digest"]))


@pytest.fixture(params=[p.name for p in IMAGES])
def image(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    copy = tmp_path / request.param
    shutil.copytree(ROOT / "tools/oci" / request.param, copy)
    for path in [copy, *copy.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # umoci takes a lock in the layout
    return copy


def test_all_layer_images_are_built() -> None:
    assert [p.name for p in IMAGES] == ["layer1_discovery", "layer2_planning", "layer3_validation", "layer4_execution"]


def test_layout_blobs_digest_and_labels(image: Path) -> None:
    assert json.loads((image / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    for blob in (image / "blobs/sha256").iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    digest, manifest, config = _manifest(image)
    assert (ROOT / "tools/oci" / f"{image.name}.digest").read_text().strip() == digest
    inspected = json.loads(subprocess.run([SKOPEO, "inspect", f"oci:{image}:latest"], check=True,
                                          capture_output=True, text=True).stdout)
    assert inspected["Digest"] == digest
    labels = inspected["Labels"]
    assert labels["chimera.layer"] == image.name.split("_")[0]
    assert labels["chimera.bazel_target"] == f"//layers/{image.name}:server"
    assert labels["org.opencontainers.image.revision"]  # the commit, or "unknown" unstamped
    assert len(manifest["layers"]) == 2 == len(config["rootfs"]["diff_ids"])
    assert list(config["config"]["ExposedPorts"]) == [f"5005{image.name[5]}/tcp"]
    stat = json.loads(subprocess.run([UMOCI, "stat", "--json", "--image", f"{image}:latest"], check=True,
                                     capture_output=True, text=True).stdout)
    assert len(stat["history"]) == 2


def test_layers_are_deterministic_tars(image: Path) -> None:
    _, manifest, config = _manifest(image)
    for layer, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"]):
        tar_bytes = gzip.decompress(_blob(image, layer["digest"]))
        assert f"sha256:{hashlib.sha256(tar_bytes).hexdigest()}" == diff_id
        with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
            members = tar.getmembers()
        files = [m.name for m in members if m.isfile()]
        assert files == sorted(files)  # files in path order, each folder just before its first entry
        seen: set[str] = set()
        for m in members:
            parent = m.name.rstrip("/").rpartition("/")[0]
            assert not parent or parent in seen, f"{m.name} comes before its folder"
            seen.add(m.name.rstrip("/"))
        assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 and m.uname == "" for m in members)
        assert all(m.isdir() or m.isfile() for m in members)  # no links, no devices
        assert all(m.mode in (0o755, 0o644) for m in members)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unpacked_entrypoint_exists_and_serves(image: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    subprocess.run([UMOCI, "unpack", "--rootless", "--image", f"{image}:latest", str(bundle)],
                   check=True, capture_output=True)
    process = json.loads((bundle / "config.json").read_text())["process"]
    _, _, config = _manifest(image)
    assert process["args"] == config["config"]["Entrypoint"] + config["config"]["Cmd"]
    rootfs = bundle / "rootfs"
    python, main = process["args"][:2]
    assert (rootfs / main.lstrip("/")).is_file()
    if not os.access(python, os.X_OK):
        pytest.skip(f"{python} (the base's interpreter) is not on this machine")
    env = {k: v.replace(APP_ROOT, f"{rootfs}{APP_ROOT}") for k, v in
           (item.split("=", 1) for item in process["env"])}
    port = _free_port()
    flags = ["--host", "127.0.0.1", "--port", str(port), "--metrics-port", "off", *RUN_FLAGS.get(image.name, [])]
    server = subprocess.Popen([python, str(rootfs / main.lstrip("/")), *flags], env=env,
                              cwd=rootfs / process["cwd"].lstrip("/"), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=30, wait_for_ready=True)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        server.terminate()
        try:
            out, _ = server.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            out, _ = server.communicate()
    assert b'"event": "listening"' in out, out[-2000:]
