"""Where the layer's data files live (the one place that knows).

The lookup order (environment variable, Bazel runfiles, working directory) is
:func:`chimera.wasm.artifacts.locate`'s, shared by every layer.
"""

from __future__ import annotations

from chimera.wasm.artifacts import Artifact, load_json, locate

__all__ = ["CORE_VECTORS", "CORE_WASM", "load_json", "locate"]

#: The evolution core module built by ``//layers/layer6_evolution:evolution_core_module``.
CORE_WASM = Artifact(
    "layers/layer6_evolution/evolution_core_module.wasm", "CHIMERA_EVOLUTION_CORE_WASM"
)
#: Test vectors shared by the Rust core's tests and the Python tests.
CORE_VECTORS = Artifact("layers/layer6_evolution/core_vectors.json", "CHIMERA_EVOLUTION_CORE_VECTORS")
