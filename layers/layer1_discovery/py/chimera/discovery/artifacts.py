"""Where the layer's data files live (the one place that knows).

The lookup order (environment variable, Bazel runfiles, working directory) is
:func:`chimera.wasm.artifacts.locate`'s, shared by every layer.
"""

from __future__ import annotations

from chimera.wasm.artifacts import Artifact, load_json, locate

__all__ = ["CORE_WASM", "DEFAULT_CONFIG", "load_json", "locate"]

#: The discovery core module built by ``//layers/layer1_discovery:discovery_core_module``.
CORE_WASM = Artifact(
    "layers/layer1_discovery/discovery_core_module.wasm", "CHIMERA_DISCOVERY_CORE_WASM"
)
#: The default thresholds and collection settings.
DEFAULT_CONFIG = Artifact("layers/layer1_discovery/discovery.json", "CHIMERA_DISCOVERY_CONFIG")
