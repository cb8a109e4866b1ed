"""deploy (local and Kubernetes) and validate, with the real layer servers on loopback."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
import yaml
from runfiles import Runfiles

from chimera_release import cli, deploy
from chimera_release.documents import file_sha256, runfiles_digest

LAYERS = ["layer1_discovery", "layer2_planning", "layer3_validation", "layer4_execution"]


def server_binary(layer: str) -> pathlib.Path:
    location = Runfiles.Create().Rlocation(f"chimera/layers/{layer}/server")
    assert location and os.path.exists(location), f"{layer} server not in runfiles"
    return pathlib.Path(location).resolve()  # the built binary, next to its runfiles tree


def image_digest(layer: str) -> str:
    """A stand-in manifest digest for the layer's image (the Kubernetes manifests reference it)."""
    return "sha256:" + hashlib.sha256(layer.encode()).hexdigest()


def release(tmp: pathlib.Path, layers: list[str], revision: str, broken: set[str] = frozenset(),
            images: bool = True) -> pathlib.Path:
    """A manifest of the layers' Bazel-built servers (or, for `broken` ones, a server that cannot serve),
    and with `images` an image deliverable per layer."""
    deliverables = []
    for layer in layers:
        if layer in broken:
            executable = tmp / f"{layer}-broken"
            executable.write_text("#!/bin/sh\necho 'broken build' >&2\nexit 3\n")
            executable.chmod(0o755)
        else:
            executable = server_binary(layer)
        output: dict[str, Any] = {"path": f"bazel-out/bin/layers/{layer}/server", "location": str(executable),
                                  "sha256": file_sha256(executable), "size": executable.stat().st_size}
        if (runfiles := runfiles_digest(executable)) is not None:
            output["runfiles"] = runfiles
        deliverables.append({"label": f"//layers/{layer}:server", "kind": "service", "rule_class": "py_binary",
                             "layer": layer, "configuration": "k8-fastbuild", "outputs": [output]})
        if images:
            deliverables.append({"label": f"//tools/oci:{layer}", "kind": "image", "rule_class": "oci_image",
                                 "layer": layer, "configuration": "k8-fastbuild", "outputs": [output],
                                 "image": {"digest": image_digest(layer), "blobs": 5, "size": 1}})
    document = {"schema": "chimera.release.manifest/v1",
                "revision": {"name": revision, "commit": revision * 40 if len(revision) == 1 else revision,
                             "tree": "f" * 40, "clean": True},
                "bazel": "test", "lock": {"path": "lock.txt", "sha256": None}, "toolchains": [],
                "deliverables": deliverables}
    path = tmp / f"manifest-{revision}.json"
    path.write_text(json.dumps(document))
    return path


def run_cli(*args: str) -> tuple[int, Any, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = cli.main(list(args))
    text = stdout.getvalue()
    return status, (json.loads(text) if text.startswith("{") else text), stderr.getvalue()


def test_local_deploy_brings_every_layer_up_and_validate_reports_them(tmp_path) -> None:
    manifest = release(tmp_path, LAYERS, "a")
    cache = tmp_path / "cache"
    command = subprocess.Popen(
        [sys.executable, "-c", "import sys; from chimera_release.cli import main; sys.exit(main(sys.argv[1:]))",
         "deploy", "--environment", "local", "--manifest", str(manifest), "--validate", "--cache-dir", str(cache)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    state = cache / "deployments" / "local.json"
    try:
        deadline = time.monotonic() + 150
        while not state.is_file() and command.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert state.is_file(), command.stderr.read() if command.poll() is not None else "no state in time"
        status, report, stderr = run_cli("validate", "--check-health", "--generate-report", "--cache-dir", str(cache),
                                         "--report-dir", str(tmp_path / "report"))
        assert status == 0, (stderr, report)
        assert [layer["layer"] for layer in report["layers"]] == LAYERS
        assert all(layer["healthy"] and layer["version"]["binary_matches"] for layer in report["layers"])
        assert report["layers"][0]["services"] == {"chimera.v1.DiscoveryService": "SERVING"}
        assert json.loads((tmp_path / "report" / "validation.json").read_text())["healthy"] is True
        assert "Chimera local deployment: healthy" in (tmp_path / "report" / "validation.html").read_text()
        planning_log = (cache / "deployments" / "local-run" / "layer2_planning.log").read_text()
        discovery = next(l["target"] for l in report["layers"] if l["layer"] == "layer1_discovery")
        assert f"--discovery-target {discovery}" in planning_log.splitlines()[0]
    finally:
        os.killpg(command.pid, signal.SIGTERM)
        out, _ = command.communicate(timeout=60)
    document = json.loads(out)
    assert document["validation"]["healthy"] is True
    assert command.returncode == 0 and not state.exists()
    status, _, stderr = run_cli("validate", "--check-health", "--cache-dir", str(cache))
    assert status == 2 and "no running deployment" in stderr


def test_canary_promotes_a_healthy_layer_and_rolls_back_a_broken_one(tmp_path) -> None:
    layers = ["layer1_discovery", "layer3_validation"]
    stable = release(tmp_path, layers, "b")
    candidate = release(tmp_path, layers, "c", broken={"layer3_validation"})
    status, document, stderr = run_cli(
        "deploy", "--environment", "local", "--manifest", str(candidate), "--baseline-manifest", str(stable),
        "--canary", "25", "--probes", "8", "--hold", "0", "--cache-dir", str(tmp_path / "cache"))
    assert status == 1, stderr
    first, second = document["canary"]
    assert first["layer"] == "layer1_discovery" and first["result"] == "promoted"
    assert first["canary_requests"] == 2 and first["canary_errors"] == 0
    assert second["layer"] == "layer3_validation" and second["result"] == "rolled_back"
    assert "exited with status 3" in second["reason"]
    revisions = {layer["layer"]: layer["revision"] for layer in document["layers"]}
    assert revisions == {"layer1_discovery": "c" * 40, "layer3_validation": "b" * 40}


def test_digests_are_verified_before_anything_starts(tmp_path) -> None:
    manifest = release(tmp_path, ["layer1_discovery"], "d")
    document = json.loads(manifest.read_text())
    document["deliverables"][0]["outputs"][0]["sha256"] = "0" * 64
    manifest.write_text(json.dumps(document))
    status, _, stderr = run_cli("deploy", "--environment", "local", "--manifest", str(manifest), "--hold", "0",
                                "--cache-dir", str(tmp_path / "cache"))
    assert status == 1 and "is not the manifest's" in stderr


@pytest.fixture
def proto_repo(tmp_path) -> pathlib.Path:
    repo = tmp_path / "repo"
    (repo / "proto").mkdir(parents=True)
    (repo / "proto" / "discovery.proto").write_text(
        'syntax = "proto3";\npackage chimera.v1;\nservice DiscoveryService {\n}\n')
    (repo / "proto" / "planning.proto").write_text(
        'syntax = "proto3";\npackage chimera.v1;\nservice PlanningService {\n}\n')
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@example.invalid",
                                                   "commit", "-q", "-m", "protos"]):
        subprocess.run(["git", *args], cwd=repo, check=True)
    return repo


def test_kubernetes_manifests_render_and_validate_offline(tmp_path, proto_repo) -> None:
    manifest = release(tmp_path, ["layer1_discovery", "layer2_planning"], "e")
    document = json.loads(manifest.read_text())
    tree = subprocess.run(["git", "rev-parse", "HEAD^{tree}"], cwd=proto_repo, capture_output=True, text=True)
    document["revision"]["tree"] = tree.stdout.strip()
    manifest.write_text(json.dumps(document))
    out = tmp_path / "k8s"
    status, result, stderr = run_cli("deploy", "--environment", "production", "--canary", "25", "--manifest",
                                     str(manifest), "--repo", str(proto_repo), "--output-dir", str(out))
    assert status == 0, stderr
    assert result["valid"] is True and result["applied"] is False
    objects = list(yaml.safe_load_all((out / "layer2_planning.yaml").read_text()))
    kinds = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert kinds == [("ConfigMap", "chimera-layer2-planning-config"), ("Service", "chimera-layer2-planning"),
                     ("Deployment", "chimera-layer2-planning"), ("Deployment", "chimera-layer2-planning-canary")]
    stable, canary = objects[2], objects[3]
    container = stable["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"registry.invalid/chimera/chimera-layer2-planning@{image_digest('layer2_planning')}"
    assert container["readinessProbe"]["grpc"] == {"port": 50051, "service": "chimera.v1.PlanningService"}
    assert container["livenessProbe"]["grpc"]["service"] == "chimera.v1.PlanningService"
    assert container["resources"]["requests"] == {"cpu": "500m", "memory": "512Mi"}
    assert "--discovery-target" in container["args"]
    assert container["args"][container["args"].index("--discovery-target") + 1] == "chimera-layer1-discovery:50051"
    assert (stable["spec"]["replicas"], canary["spec"]["replicas"]) == (3, 1)
    assert json.loads((out / "weights.json").read_text())["layer2_planning.yaml"] == {
        "chimera-layer2-planning": 75, "chimera-layer2-planning-canary": 25}


def test_kubernetes_manifests_need_every_layers_image(tmp_path, proto_repo) -> None:
    manifest = release(tmp_path, ["layer1_discovery"], "f", images=False)
    status, _, stderr = run_cli("deploy", "--environment", "staging", "--manifest", str(manifest),
                                "--repo", str(proto_repo), "--output-dir", str(tmp_path / "k8s"))
    assert status == 2 and "lists no image of layer1_discovery" in stderr


def test_kubernetes_validation_reports_a_bad_object() -> None:
    spec = deploy.LayerSpec("layer1_discovery", "chimera.v1.DiscoveryService", {}, "0" * 64, "sha256:" + "1" * 64)
    files = deploy.render_kubernetes([spec], deploy.ENVIRONMENTS["staging"], "0" * 40, "registry.invalid/x", 0)
    assert deploy.validate_kubernetes(files) == []
    files["layer1_discovery.yaml"][2]["spec"]["replicas"] = "two"
    assert deploy.validate_kubernetes(files) == [
        "layer1_discovery.yaml: Deployment/chimera-layer1-discovery: 'two' is not of type 'integer', 'null'"]


@pytest.mark.parametrize("args, message", [
    (["deploy", "--environment", "local", "--canary", "0", "--manifest", "x.json"], "--canary 0"),
    (["deploy", "--environment", "moon"], "invalid choice: 'moon'"),
    (["deploy", "--environment", "local", "--manifest", "/no/such.json"], "--manifest /no/such.json"),
    (["validate"], "pass --check-health"),
])
def test_bad_input_exits_2(args, message) -> None:
    status, _, stderr = run_cli(*args)
    assert status == 2 and message in stderr and stderr.count("\n") == 1


def delta(tmp: pathlib.Path, removed_layers: list[str], tree: str = "f" * 40, schema: str = "affected") -> pathlib.Path:
    """An `affected` report (or `artifacts` document) whose head removed these layers' servers."""
    labels = [f"//layers/{layer}:server" for layer in removed_layers] + ["//lib:gone"]
    if schema == "affected":
        document = {"schema": "chimera.release.affected/v1", "head": {"tree": tree}, "removed": labels,
                    "affected": [{"label": label, "kind": "py_binary" if label.endswith(":server") else "py_library",
                                  "status": "deleted"} for label in labels]}
    else:
        document = {"schema": "chimera.release.artifacts/v1", "head": {"tree": tree}, "removed": labels[:-1],
                    "artifacts": [{"label": label, "kind": "service", "rule_class": "py_binary", "status": "deleted"}
                                  for label in labels[:-1]]}
    path = tmp / f"delta-{schema}.json"
    path.write_text(json.dumps(document))
    return path


def test_canary_tears_down_a_removed_layer_after_the_rollout(tmp_path) -> None:
    stable = release(tmp_path, ["layer1_discovery", "layer2_planning"], "g")
    candidate = release(tmp_path, ["layer2_planning"], "h")
    status, document, stderr = run_cli(
        "deploy", "--environment", "local", "--manifest", str(candidate), "--baseline-manifest", str(stable),
        "--delta", str(delta(tmp_path, ["layer1_discovery"])), "--canary", "50", "--probes", "4", "--hold", "0",
        "--cache-dir", str(tmp_path / "cache"))
    assert status == 0, stderr
    assert [c["result"] for c in document["canary"]] == ["promoted"]
    [teardown] = document["teardown"]
    assert teardown["layer"] == "layer1_discovery" and teardown["result"] == "stopped"
    assert [layer["layer"] for layer in document["layers"]] == ["layer2_planning"]
    events = [(e["event"], e["layer"]) for e in document["events"]]
    assert events.index(("promoted", "layer2_planning")) < events.index(("torn_down", "layer1_discovery"))
    # The stable layer 2 was wired to layer 1; its replacement is not wired to a layer being torn down.
    runs = tmp_path / "cache" / "deployments" / "local-run"
    assert "--discovery-target" in (runs / "layer2_planning.log").read_text().splitlines()[0]
    assert "--discovery-target" not in (runs / "layer2_planning-canary.log").read_text().splitlines()[0]


def test_kubernetes_teardown_plan_lists_and_unrenders_the_removed_layer(tmp_path, proto_repo) -> None:
    tree = subprocess.run(["git", "rev-parse", "HEAD^{tree}"], cwd=proto_repo, capture_output=True,
                          text=True).stdout.strip()
    out = tmp_path / "k8s"
    before = release(tmp_path, ["layer1_discovery", "layer2_planning"], "i")
    after = release(tmp_path, ["layer1_discovery"], "j")
    for path in (before, after):
        document = json.loads(path.read_text())
        document["revision"]["tree"] = tree
        path.write_text(json.dumps(document))
    common = ["deploy", "--environment", "staging", "--canary", "50", "--repo", str(proto_repo), "--output-dir", str(out)]
    status, _, stderr = run_cli(*common, "--manifest", str(before))
    assert status == 0 and (out / "layer2_planning.yaml").is_file(), stderr
    rendered = [(o["kind"], o["metadata"]["name"]) for o in yaml.safe_load_all((out / "layer2_planning.yaml").read_text())]
    status, result, stderr = run_cli(*common, "--manifest", str(after), "--delta",
                                     str(delta(tmp_path, ["layer2_planning"], tree, schema="artifacts")))
    assert status == 0, stderr
    [teardown] = result["teardown"]
    assert teardown["label"] == "//layers/layer2_planning:server"
    # The plan deletes exactly what a render of the layer creates, and applying the directory cannot revive it.
    assert [(o["kind"], o["name"]) for o in teardown["objects"]] == rendered
    assert json.loads((out / "teardown.json").read_text())["delete"] == result["teardown"]
    assert not (out / "layer2_planning.yaml").exists() and (out / "layer1_discovery.yaml").is_file()


@pytest.mark.parametrize("change, message", [
    ({"tree": "e" * 40}, "is not the manifest's revision"),
    ({"schema": "chimera.release.graph/v1"}, "not a chimera.release.affected/v1 or chimera.release.artifacts/v1"),
    ({"removed": "//layers/layer2_planning:server"}, "removed: expected a list of target labels"),
    ({"still_listed": True}, "which the manifest still deploys"),
])
def test_bad_delta_exits_2(tmp_path, change, message) -> None:
    manifest = release(tmp_path, ["layer1_discovery"], "k")
    path = delta(tmp_path, ["layer1_discovery" if change.get("still_listed") else "layer2_planning"],
                 tree=change.get("tree", "f" * 40))
    document = json.loads(path.read_text())
    document.update({k: v for k, v in change.items() if k in ("schema", "removed")})
    path.write_text(json.dumps(document))
    status, _, stderr = run_cli("deploy", "--environment", "local", "--manifest", str(manifest), "--delta", str(path),
                                "--hold", "0", "--cache-dir", str(tmp_path / "cache"))
    assert status == 2 and message in stderr and stderr.count("\n") == 1
