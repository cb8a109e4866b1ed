"""Which targets are release deliverables, read from a snapshot of the graph.

Servers are the `server` py_binary of each layer package (so new layers are
picked up without code changes); WASM modules, native libraries and OCI images
(//tools/oci, one per layer server) are recognised by rule class. An image
belongs to the layer of the server it packages.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from chimera_release.affected import layer_of

WASM_CLASSES = {"rust_wasm_module"}
NATIVE_LIBRARY_CLASSES = {"rust_library", "rust_shared_library", "rust_static_library", "cc_library"}
IMAGE_CLASSES = {"oci_image"}


@dataclasses.dataclass(frozen=True)
class Deliverable:
    label: str
    kind: str  # "service" | "wasm" | "native_library" | "image"
    rule_class: str
    layer: str  # "layerN_name", or "shared" outside //layers

    def as_json(self) -> dict[str, str]:
        return dataclasses.asdict(self)


def classify(label: str, rule_class: str) -> str | None:
    name = label.rsplit(":", 1)[-1]
    if rule_class in IMAGE_CLASSES:  # built by tools/oci, yet a layer's deliverable
        return "image"
    if label.startswith("//tools/"):  # the build's own tooling and its test fixtures
        return None
    if rule_class == "py_binary" and name == "server" and label.startswith("//layers/"):
        return "service"
    if rule_class in WASM_CLASSES:
        return "wasm"
    if rule_class in NATIVE_LIBRARY_CLASSES:
        return "native_library"
    return None


def deliverables(snapshot: dict[str, Any]) -> list[Deliverable]:
    found = []
    for label, node in sorted(snapshot["targets"].items()):
        if node["k"] != "rule":
            continue
        kind = classify(label, node["own"].get("class", ""))
        if kind is None:
            continue
        layer = layer_of(label)
        if kind == "image":  # the layer of the server it packages
            layer = next((layer_of(i) for i in node["in"] if layer_of(i)), None)
        found.append(Deliverable(label=label, kind=kind, rule_class=node["own"]["class"], layer=layer or "shared"))
    return found


def servers(snapshot: dict[str, Any]) -> list[Deliverable]:
    return [d for d in deliverables(snapshot) if d.kind == "service"]
