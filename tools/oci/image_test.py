"""One layer's OCI image (CHIMERA_IMAGE; one test target per image), checked with
Debian's umoci and skopeo: the layout is valid (every blob is the digest it is named
by), skopeo reads the manifest digest the build recorded and the labels, umoci unpacks
it into a runtime bundle whose entrypoint exists, the tar layers are deterministic
(sorted, mtime 0; the application layers owner 0 but for the volumes, which are the
image user's), and the unpacked server, run with the image's own arguments (its
volumes' paths moved under the unpacked rootfs), answers a health check when its
entrypoint runs: the base layer's own python3.11, started through the base layer's
own dynamic loader and libraries (ci/containers.sh runs the images in podman)."""

from __future__ import annotations

import gzip
import hashlib
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

from tools.host_tools.host_tool import recorded
from tools.testing import optional

ROOT = Path(os.environ.get("TEST_SRCDIR", ".")) / os.environ.get("TEST_WORKSPACE", "chimera")
IMAGES = sorted(p.parent for p in (ROOT / "tools/oci").glob("*/oci-layout"))
NAME = os.environ.get("CHIMERA_IMAGE", "")
_UMOCI, _SKOPEO = recorded("umoci"), recorded("skopeo")
UMOCI, SKOPEO = _UMOCI.path, _SKOPEO.path
MISSING_TOOLS = "; ".join(filter(None, (_UMOCI.missing, _SKOPEO.missing))) or None
_umoci_and_skopeo = optional.every_test_requires(MISSING_TOOLS)
APP_ROOT = "/app/runfiles"
# Layer 4 refuses to start without its layer-3 gate; no layer 3 runs here.
RUN_FLAGS = {"layer4_execution": ["--trust-unvalidated-modules"]}
# Layers 1-4's images, Debian base included, compressed (issue 20); the JAX layers'
# wheels alone are ~180 MB.
SMALL_IMAGE_BYTES = 40_000_000
JAX_LAYERS = {"layer5_refinement", "layer6_evolution", "layer7_genetics", "layer8_resources"}
# What a server writes into its volume by the time it serves.
WRITES_AT_START = {"layer7_genetics": "genomes.sqlite"}


def _blob(layout: Path, digest: str) -> bytes:
    algorithm, hexdigest = digest.split(":")
    return (layout / "blobs" / algorithm / hexdigest).read_bytes()


def _manifest(layout: Path) -> tuple[str, dict, dict]:
    index = json.loads((layout / "index.json").read_text())
    (descriptor,) = index["manifests"]
    assert descriptor["annotations"]["org.opencontainers.image.ref.name"] == "latest"
    manifest = json.loads(_blob(layout, descriptor["digest"]))
    return descriptor["digest"], manifest, json.loads(_blob(layout, manifest["config"]["digest"]))


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A writable copy of the layout (umoci takes a lock in it), made once: the JAX
    layers' images are hundreds of megabytes."""
    copy = tmp_path_factory.mktemp("layout") / NAME
    shutil.copytree(ROOT / "tools/oci" / NAME, copy)
    for path in [copy, *copy.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return copy


@pytest.fixture(scope="module")
def bundle(image: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A runtime bundle: `umoci raw unpack` (the rootfs) and `umoci raw runtime-config`
    (its config.json), which is `umoci unpack` without the mtree of every file's
    sha256 that only `umoci repack` reads (half the time for a JAX image)."""
    # Module fixtures are set up before the autouse requirement: check it here too.
    optional.require(MISSING_TOOLS)
    unpacked = tmp_path_factory.mktemp("unpacked")
    rootfs = unpacked / "rootfs"
    source = ["--rootless", "--image", f"{image}:latest"]
    subprocess.run([UMOCI, "raw", "unpack", *source, str(rootfs)], check=True, capture_output=True)
    subprocess.run([UMOCI, "raw", "runtime-config", *source, "--rootfs", str(rootfs), str(unpacked / "config.json")],
                   check=True, capture_output=True)
    return unpacked


class _HashingReader:
    """A stream that hashes what is read from it."""

    def __init__(self, stream: gzip.GzipFile) -> None:
        self.stream = stream
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.sha256.update(data)
        return data


def test_the_named_image_is_the_one_in_the_runfiles() -> None:
    assert NAME, "CHIMERA_IMAGE names the image under test (tools/oci/BUILD sets it)"
    assert [p.name for p in IMAGES] == [NAME]


def test_layout_blobs_digest_and_labels(image: Path) -> None:
    assert json.loads((image / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    for blob in (image / "blobs/sha256").iterdir():
        with blob.open("rb") as f:
            assert hashlib.file_digest(f, "sha256").hexdigest() == blob.name
    digest, manifest, config = _manifest(image)
    assert (ROOT / "tools/oci" / f"{image.name}.digest").read_text().strip() == digest
    inspected = json.loads(subprocess.run([SKOPEO, "inspect", f"oci:{image}:latest"], check=True,
                                          capture_output=True, text=True).stdout)
    assert inspected["Digest"] == digest
    labels = inspected["Labels"]
    assert labels["chimera.layer"] == image.name.split("_")[0]
    assert labels["chimera.bazel_target"] == f"//layers/{image.name}:server"
    assert labels["org.opencontainers.image.revision"]  # the commit, or "unknown" unstamped
    assert len(manifest["layers"]) == 3 == len(config["rootfs"]["diff_ids"])  # base, third-party, workspace
    assert labels["chimera.base_layer"] == "//tools/oci:base"
    assert list(config["config"]["ExposedPorts"]) == [f"5005{image.name[5]}/tcp"]
    compressed = manifest["config"]["size"] + sum(layer["size"] for layer in manifest["layers"])
    if image.name not in JAX_LAYERS:
        assert compressed <= SMALL_IMAGE_BYTES, f"{compressed / 1e6:.1f} MB compressed"
    stat = json.loads(subprocess.run([UMOCI, "stat", "--json", "--image", f"{image}:latest"], check=True,
                                     capture_output=True, text=True).stdout)
    assert len(stat["history"]) == 3


def test_layers_are_deterministic_tars(image: Path) -> None:
    _, manifest, config = _manifest(image)
    volumes = {v.strip("/") for v in config["config"].get("Volumes", {})}
    uid, _, gid = config["config"]["User"].partition(":")
    user = (int(uid), int(gid or uid))
    seen_volumes: set[str] = set()
    for number, (layer, diff_id) in enumerate(zip(manifest["layers"], config["rootfs"]["diff_ids"])):
        # One streamed pass: a JAX layer is ~650 MB unpacked.
        with gzip.open(image / "blobs" / Path(*layer["digest"].split(":")), "rb") as stream:
            reader = _HashingReader(stream)
            with tarfile.open(fileobj=reader, mode="r|") as tar:
                members = list(tar)
            for _ in iter(lambda: reader.read(1 << 20), b""):
                pass  # the end-of-archive padding tarfile leaves unread
        assert f"sha256:{reader.sha256.hexdigest()}" == diff_id
        files = [m.name for m in members if m.isfile()]
        assert files == sorted(files)  # files in path order, each folder just before its first entry
        seen: set[str] = set()
        for m in members:
            parent = m.name.rstrip("/").rpartition("/")[0]
            assert not parent or parent in seen, f"{m.name} comes before its folder"
            seen.add(m.name.rstrip("/"))
        assert all(m.mtime == 0 and m.uname == m.gname == "" for m in members)
        owned = {m.name.rstrip("/"): (m.uid, m.gid) for m in members if (m.uid, m.gid) != (0, 0)}
        if number == 0:  # the Debian base: the packages' links and modes; the user's home
            assert owned == {"home/nonroot": user}
            assert {"etc/passwd", "etc/ssl/certs/ca-certificates.crt", config["config"]["Entrypoint"][0].lstrip("/")} <= set(files)
            continue
        assert set(owned) <= volumes and all(owner == user for owner in owned.values()), owned
        assert all(m.isdir() or m.isfile() for m in members)  # no links, no devices
        assert all(m.mode in (0o755, 0o644) for m in members)
        in_volume = [m.name for m in members if any(m.name.startswith(f"{v}/") and m.name != f"{v}/" for v in volumes)]
        assert not in_volume, f"volumes are empty in the image: {in_volume}"
        seen_volumes |= set(owned)
    assert seen_volumes == volumes  # each volume is in the image, owned by its user


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unpacked_entrypoint_exists_and_serves(image: Path, bundle: Path) -> None:
    process = json.loads((bundle / "config.json").read_text())["process"]
    _, _, config = _manifest(image)
    assert process["args"] == config["config"]["Entrypoint"] + config["config"]["Cmd"]
    assert f'{process["user"]["uid"]}:{process["user"]["gid"]}' == config["config"]["User"] == "65532:65532"
    rootfs = bundle / "rootfs"
    python, main, *cmd = process["args"]
    assert (rootfs / main.lstrip("/")).is_file()
    assert cmd[:2] == ["--host", "0.0.0.0"]  # the image's; this test binds loopback instead
    volumes = sorted(config["config"].get("Volumes", {}))
    for volume in volumes:
        assert (rootfs / volume.lstrip("/")).is_dir()
    # The image's interpreter, not the host's: the base layer's loader and libraries.
    loader = rootfs / "lib64/ld-linux-x86-64.so.2"
    libraries = ":".join(str(rootfs / d) for d in ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu"))
    interpreter = [str(loader), "--library-path", libraries, str(rootfs / python.lstrip("/"))]
    env = {k: v.replace(APP_ROOT, f"{rootfs}{APP_ROOT}") for k, v in
           (item.split("=", 1) for item in process["env"])}
    env["PYTHONHOME"] = str(rootfs / "usr")  # its standard library, not the host's
    own_args = [_under(rootfs, arg, volumes) for arg in cmd[2:]]
    port = _free_port()
    flags = ["--host", "127.0.0.1", "--port", str(port), "--metrics-port", "off", *RUN_FLAGS.get(NAME, [])]
    server = subprocess.Popen([*interpreter, str(rootfs / main.lstrip("/")), *own_args, *flags], env=env,
                              cwd=rootfs / process["cwd"].lstrip("/"), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=60, wait_for_ready=True)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        server.terminate()
        try:
            out, _ = server.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            out, _ = server.communicate()
    assert b'"event": "listening"' in out, out[-2000:]
    if NAME in WRITES_AT_START:
        (volume,) = volumes
        assert (rootfs / volume.lstrip("/") / WRITES_AT_START[NAME]).is_file(), out[-2000:]


def _under(rootfs: Path, arg: str, volumes: list[str]) -> str:
    """An argument naming a path in a volume, moved to the same path under the unpacked rootfs."""
    for volume in volumes:
        if arg == volume or arg.startswith(volume + "/"):
            return f"{rootfs}{arg}"
    return arg
