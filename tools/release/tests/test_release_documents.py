"""graph, manifest and sbom on a generated repository (with an OCI image of its demo
server); documents checked against their schemas."""

from __future__ import annotations

import hashlib
import json
import pathlib
import textwrap
from typing import Any

import pytest

from chimera_release import cli, documents
from fixture import IMAGE_FILES, FixtureRepo, release_args, run_main

IMAGE = "//tools/oci:layer9_demo"


@pytest.fixture(scope="module")
def repo(workdir: pathlib.Path) -> FixtureRepo:
    """The fixture with the demo server's image (overrides conftest's)."""
    repo = FixtureRepo(workdir / "repo")
    for path, text in IMAGE_FILES.items():
        repo.write(path, textwrap.dedent(text))
    repo.commit("an OCI image of the demo server")
    return repo


def run_cli(workdir: pathlib.Path, repo: FixtureRepo, *args: str) -> tuple[int, Any, str]:
    return run_main(cli.main, release_args(workdir, repo, *args))


@pytest.fixture(scope="module")
def manifest(workdir: pathlib.Path, repo: FixtureRepo) -> dict[str, Any]:
    status, document, stderr = run_cli(workdir, repo, "manifest")
    assert status == 0, stderr
    return document


def test_graph_deliverables_per_layer(workdir, repo) -> None:
    status, doc, _ = run_cli(workdir, repo, "graph", "deliverables")
    assert status == 0
    assert doc["layers"] == {"layer9_demo": [
        {"label": "//layers/layer9_demo:demo_core_module", "kind": "wasm", "rule_class": "rust_wasm_module",
         "layer": "layer9_demo"},
        {"label": "//layers/layer9_demo:server", "kind": "service", "rule_class": "py_binary",
         "layer": "layer9_demo"},
        {"label": IMAGE, "kind": "image", "rule_class": "oci_image", "layer": "layer9_demo"},
    ]}


def test_graph_deps_rdeps_tests(workdir, repo) -> None:
    _, deps, _ = run_cli(workdir, repo, "graph", "deps", "//app:bin_test")
    assert deps["targets"] == ["//app:bin", "//app:gen", "//lib:data"]
    _, rdeps, _ = run_cli(workdir, repo, "graph", "rdeps", "//lib:data")
    assert rdeps["targets"] == ["//app:bin", "//app:bin_test", "//layers/layer9_demo:demo_core_module",
                                "//layers/layer9_demo:server", "//layers/layer9_demo:server_test", IMAGE]
    _, tests, _ = run_cli(workdir, repo, "graph", "tests", "//app:gen")
    assert tests["targets"] == ["//app:bin_test"]
    status, _, stderr = run_cli(workdir, repo, "graph", "deps", "//no:such")
    assert status == 2 and "no target //no:such" in stderr


def test_manifest_matches_schema_and_outputs(manifest) -> None:
    assert documents.manifest_problems(manifest) == []
    assert manifest["revision"]["clean"] is True
    by_label = {d["label"]: d for d in manifest["deliverables"]}
    assert set(by_label) == {"//layers/layer9_demo:demo_core_module", "//layers/layer9_demo:server", IMAGE}
    wasm = by_label["//layers/layer9_demo:demo_core_module"]["outputs"]
    assert [o["path"].rsplit("/", 1)[-1] for o in wasm] == ["demo_core_module.wasm"]
    content = pathlib.Path(wasm[0]["location"]).read_bytes()
    assert wasm[0]["sha256"] == hashlib.sha256(content).hexdigest() and wasm[0]["size"] == len(content)
    server = by_label["//layers/layer9_demo:server"]["outputs"]
    assert any(o.get("runfiles", {}).get("files", 0) >= 2 for o in server)
    lock = (pathlib.Path(manifest["workspace"]) / "requirements_lock.txt").read_bytes()
    assert manifest["lock"]["path"].endswith("requirements_lock.txt")
    assert by_label["//layers/layer9_demo:server"]["configuration"].startswith("k8-")
    assert len(lock) > 0


def test_manifest_lists_the_image_digest(manifest) -> None:
    (image,) = [d for d in manifest["deliverables"] if d["kind"] == "image"]
    assert image["layer"] == "layer9_demo"  # the layer of the server it packages
    outputs = {o["path"].split("/bin/", 1)[1]: o for o in image["outputs"]}
    recorded = pathlib.Path(outputs["tools/oci/layer9_demo.digest"]["location"]).read_text().strip()
    index = json.loads(pathlib.Path(outputs["tools/oci/layer9_demo/index.json"]["location"]).read_text())
    assert image["image"]["digest"] == recorded == index["manifests"][0]["digest"]
    blobs = [o for p, o in outputs.items() if p.startswith("tools/oci/layer9_demo/blobs/sha256/")]
    assert image["image"]["blobs"] == len(blobs) == 3
    assert image["image"]["size"] == sum(o["size"] for o in blobs)
    for blob in blobs:  # every blob is named by its content digest
        assert blob["path"].rsplit("/", 1)[1] == blob["sha256"]


def test_images_ran_must_be_the_images_built(workdir, repo, manifest, tmp_path) -> None:
    (image,) = [d for d in manifest["deliverables"] if d["kind"] == "image"]
    assert "ran" not in image["image"]  # without --images-ran nothing is claimed
    ran = tmp_path / "ran.json"
    ran.write_text(json.dumps({"layer9_demo": image["image"]["digest"]}))
    status, document, stderr = run_cli(workdir, repo, "manifest", "--images-ran", str(ran))
    assert status == 0, stderr
    (image,) = [d for d in document["deliverables"] if d["kind"] == "image"]
    assert image["image"]["ran"] is True
    assert documents.manifest_problems(document) == []
    other = "sha256:" + "1" * 64
    ran.write_text(json.dumps({"layer9_demo": other}))
    status, _, stderr = run_cli(workdir, repo, "manifest", "--images-ran", str(ran))
    assert status == 2 and f"//tools/oci:layer9_demo: built {image['image']['digest']}, but the containers ran {other}" in stderr


def test_sbom_lists_the_base_layers_debian_packages(manifest) -> None:
    package = {"name": "libssl3", "version": "3.0.22-1~deb12u2", "architecture": "amd64", "source": "openssl",
               "sha256": "ab" * 32}
    with_base = {**manifest, "debian": [{"path": "third_party/debian/base.lock.json", "sha256": "cd" * 32,
                                         "architecture": "amd64", "packages": [package]}]}
    text = documents.render_bom(documents.build_bom(with_base, "", None))
    assert documents.sbom_problems(text) == []
    (component,) = [c for c in json.loads(text)["components"] if c["bom-ref"] == "deb:base:libssl3"]
    assert component["purl"] == "pkg:deb/debian/libssl3@3.0.22-1~deb12u2?arch=amd64&distro=debian-12"
    assert component["hashes"] == [{"alg": "SHA-256", "content": "ab" * 32}]


def test_sbom_is_valid_cyclonedx(workdir, repo, manifest, tmp_path) -> None:
    manifest_file = tmp_path / "manifest.json"
    manifest_file.write_text(json.dumps(manifest))
    status, text, stderr = run_cli(workdir, repo, "sbom", "--manifest", str(manifest_file))
    assert status == 0, stderr
    document = text if isinstance(text, dict) else json.loads(text)
    assert documents.sbom_problems(json.dumps(document)) == []
    assert document["bomFormat"] == "CycloneDX" and document["specVersion"] == "1.6"
    components = {c["name"]: c for c in document["components"]}
    assert components["numpy"]["version"] == "2.4.6"
    assert components["numpy"]["purl"] == "pkg:pypi/numpy@2.4.6"
    assert components["numpy"]["hashes"] == [{"alg": "SHA-256", "content": "1" * 64}]
    assert components["//layers/layer9_demo:server"]["type"] == "application"
    (image,) = [d for d in manifest["deliverables"] if d["kind"] == "image"]
    assert components[IMAGE]["type"] == "container"
    assert components[IMAGE]["hashes"] == [{"alg": "SHA-256", "content": image["image"]["digest"][7:]}]


def test_sbom_rejects_a_bad_manifest(workdir, repo, tmp_path) -> None:
    status, _, stderr = run_cli(workdir, repo, "sbom", "--manifest", str(tmp_path / "missing.json"))
    assert status == 2 and "--manifest" in stderr


def test_artifacts_separate_changed_from_byte_identical(workdir, repo) -> None:
    start = repo.head()
    repo.replace("lib/data.txt", "v1", "v2")  # the demo module does not read its srcs' content
    identical = repo.commit("data only")
    repo.replace("tools/wasm.bzl", '"\\0asm module "', '"\\0asm module v2 "')
    changed = repo.commit("module bytes")
    try:
        status, doc, stderr = run_cli(workdir, repo, "artifacts", "--base", start, "--head", identical)
        assert status == 0, stderr
        assert {a["label"]: a["status"] for a in doc["artifacts"]} == {
            "//layers/layer9_demo:demo_core_module": "identical", "//layers/layer9_demo:server": "identical",
            IMAGE: "identical"}
        status, doc, stderr = run_cli(workdir, repo, "artifacts", "--base", identical, "--head", changed)
        assert status == 0, stderr
        statuses = {a["label"]: (a["status"], a["changed_outputs"]) for a in doc["artifacts"]}
        assert statuses["//layers/layer9_demo:demo_core_module"] == (
            "changed", ["layers/layer9_demo/demo_core_module.wasm"])
        assert statuses["//layers/layer9_demo:server"][0] == "changed"  # its runfiles carry the module
        assert statuses[IMAGE][0] == "changed"  # so does its image
    finally:
        repo.reset(start)


def test_check_command_flags_schema_violations(manifest, tmp_path) -> None:
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(manifest))
    broken = json.loads(json.dumps(manifest))
    broken["deliverables"][0]["outputs"][0]["sha256"] = "not-a-digest"
    del broken["lock"]
    del next(d for d in broken["deliverables"] if d["kind"] == "image")["image"]
    bad.write_text(json.dumps(broken))
    status, doc, _ = run_main(cli.main, ["check", "--manifest", str(good)])
    assert status == 0 and doc["valid"] is True
    status, doc, _ = run_main(cli.main, ["check", "--manifest", str(bad)])
    assert status == 1 and len(doc["problems"]) == 3
    assert any("deliverables/0/outputs/0/sha256" in p for p in doc["problems"])
    assert any("'image' is a required property" in p for p in doc["problems"])
    status, _, stderr = run_main(cli.main, ["check"])
    assert status == 2 and "nothing to check" in stderr
