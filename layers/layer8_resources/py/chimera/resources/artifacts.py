"""Where the layer's data files live (the one place that knows).

The lookup order (environment variable, Bazel runfiles, working directory) is
:func:`chimera.wasm.artifacts.locate`'s, shared by every layer.
"""

from __future__ import annotations

from chimera.wasm.artifacts import Artifact, load_json, locate

__all__ = ["CONFIG", "CORE_WASM", "load_json", "locate"]

#: The resources core module built by ``//layers/layer8_resources:resources_core_module``.
CORE_WASM = Artifact(
    "layers/layer8_resources/resources_core_module.wasm", "CHIMERA_RESOURCES_CORE_WASM"
)
#: Rates, grant limits and retention: the file users edit.
CONFIG = Artifact("layers/layer8_resources/resources.json", "CHIMERA_RESOURCES_CONFIG")
