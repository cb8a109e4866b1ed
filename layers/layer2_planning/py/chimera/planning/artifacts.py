"""Where the layer's data files live (the one place that knows).

The lookup order (environment variable, Bazel runfiles, working directory) is
:func:`chimera.wasm.artifacts.locate`'s, shared by every layer.
"""

from __future__ import annotations

from chimera.wasm.artifacts import Artifact, load_json, locate

__all__ = ["CORE_WASM", "TEMPLATES", "load_json", "locate"]

#: The planning core module built by ``//layers/layer2_planning:planning_core_module``.
CORE_WASM = Artifact(
    "layers/layer2_planning/planning_core_module.wasm", "CHIMERA_PLANNING_CORE_WASM"
)
#: The goal decomposition templates.
TEMPLATES = Artifact("layers/layer2_planning/templates.json", "CHIMERA_PLANNING_TEMPLATES")
