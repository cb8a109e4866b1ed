"""Where the layer's data files live (the one place that knows).

The lookup order (environment variable, Bazel runfiles, working directory) is
:func:`chimera.wasm.artifacts.locate`'s, shared by every layer.
"""

from __future__ import annotations

from chimera.wasm.artifacts import Artifact, load_json, locate

__all__ = ["CORE_WASM", "POLICY", "load_json", "locate"]

#: The validation core module built by ``//layers/layer3_validation:validation_core_module``.
CORE_WASM = Artifact(
    "layers/layer3_validation/validation_core_module.wasm",
    "CHIMERA_VALIDATION_CORE_WASM",
)
#: The policy file users edit.
POLICY = Artifact("layers/layer3_validation/policy.json", "CHIMERA_VALIDATION_POLICY")
