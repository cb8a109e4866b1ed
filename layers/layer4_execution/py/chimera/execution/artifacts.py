"""Where the built execution kernel lives (the one place that names it).

The lookup order (``$CHIMERA_EXECUTION_KERNEL_WASM``, Bazel runfiles, the
working directory) is :func:`chimera.wasm.artifacts.locate`'s, shared by
every layer.
"""

from __future__ import annotations

from pathlib import Path

from chimera.wasm.artifacts import Artifact, locate

__all__ = ["KERNEL", "kernel_wasm_bytes", "kernel_wasm_path"]

#: The workload kernel built by ``//layers/layer4_execution:execution_core_module``.
KERNEL = Artifact("layers/layer4_execution/execution_core_module.wasm", "CHIMERA_EXECUTION_KERNEL_WASM")


def kernel_wasm_path() -> Path:
    """Path of ``execution_core_module.wasm``; FileNotFoundError lists where it looked."""
    return locate(KERNEL)


def kernel_wasm_bytes() -> bytes:
    """The kernel module's bytes."""
    return kernel_wasm_path().read_bytes()
