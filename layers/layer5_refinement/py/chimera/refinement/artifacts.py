"""Where the layer's data files live (the one place that knows).

The lookup order (environment variable, Bazel runfiles, working directory) is
:func:`chimera.wasm.artifacts.locate`'s, shared by every layer.
"""

from __future__ import annotations

from chimera.wasm.artifacts import Artifact, locate

__all__ = ["CORE_WASM", "locate"]

#: The refinement core module built by ``//layers/layer5_refinement:refinement_core_module``.
CORE_WASM = Artifact(
    "layers/layer5_refinement/refinement_core_module.wasm", "CHIMERA_REFINEMENT_CORE_WASM"
)
