"""The metrics aspect, applied inside the main build to fixtures of known size
(//tools/metrics/testdata), records exact sizes, kinds, layers and deps."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tools.metrics.report import aspect
from tools.metrics.report.layers import layer_of

METRICS_DIR = Path(os.environ.get("TEST_SRCDIR", ".")) / os.environ.get("TEST_WORKSPACE", "chimera") / "tools/metrics/testdata/_metrics"


def _load(name: str) -> dict:
    return json.loads((METRICS_DIR / f"{name}.json").read_text())


def _sizes(data: dict) -> dict[str, int]:
    return {Path(o["path"]).name: o["size_bytes"] for o in data["outputs"]}


def test_generated_files_and_directory_have_exact_sizes() -> None:
    data = _load("sized")
    assert _sizes(data) == {"empty.bin": 0, "kilo.bin": 1000, "odd.bin": 4097, "tree": 30}
    assert {o["type"] for o in data["outputs"]} == {"file", "directory"}
    assert data["total_bytes"] == 5127
    assert data["kind"] == "sized_outputs"
    assert data["label"] == "//tools/metrics/testdata:sized"
    assert data["layer"] == "tools"
    assert data["deliverable"] is False


def test_source_file_is_measured_too() -> None:
    data = _load("committed")
    assert _sizes(data) == {"fixed_123.txt": 123}
    assert data["kind"] == "filegroup"


def test_target_without_outputs() -> None:
    data = _load("empty")
    assert data["outputs"] == [] and data["total_bytes"] == 0


def test_deliverable_tag_and_direct_deps() -> None:
    assert _load("deliverable")["deliverable"] is True
    data = _load("with_deps")
    assert data["kind"] == "sh_library"
    assert data["deps"] == ["//tools/metrics/testdata:committed_lib"]
    assert data["data"] == ["//tools/metrics/testdata:deliverable"]
    # sh_library's default outputs are its srcs plus its deps' and data's files.
    assert data["total_bytes"] == 5127 + 123 + 2048


def test_report_reader_reads_the_aspect_files() -> None:
    targets = aspect.load(aspect.find_files(METRICS_DIR.parent))
    assert set(targets) == {
        "//tools/metrics/testdata:committed",
        "//tools/metrics/testdata:deliverable",
        "//tools/metrics/testdata:empty",
        "//tools/metrics/testdata:sized",
        "//tools/metrics/testdata:with_deps",
    }
    assert targets["//tools/metrics/testdata:sized"].total_bytes == 5127


@pytest.mark.parametrize(
    ("label", "layer"),
    [
        ("//layers/layer4_execution:execution_core", "layer4"),
        ("//layers/layer1_discovery/py:service", "layer1"),
        ("//layers/shared:x", "layers"),
        ("//proto/chimera/v1:common_proto", "proto"),
        ("//:README.md", "root"),
        ("@pypi//:numpy", "external"),
        ("@chimera//tools/metrics:report", "tools"),
        ("not a label", ""),
    ],
)
def test_layer_of_matches_the_starlark_rule(label: str, layer: str) -> None:
    assert layer_of(label) == layer
