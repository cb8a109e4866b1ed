"""Where the built execution kernels live (the one place that names them).

The lookup order (``$CHIMERA_EXECUTION_KERNEL_WASM``, Bazel runfiles, the
working directory) is :func:`chimera.wasm.artifacts.locate`'s, shared by
every layer.
"""

from __future__ import annotations

from pathlib import Path

from chimera.wasm.artifacts import Artifact, locate

__all__ = ["BINPACKING_KERNEL", "KERNEL", "binpacking_wasm_bytes", "kernel_wasm_bytes", "kernel_wasm_path"]

#: The workload kernel built by ``//layers/layer4_execution:execution_core_module``.
KERNEL = Artifact("layers/layer4_execution/execution_core_module.wasm", "CHIMERA_EXECUTION_KERNEL_WASM")
#: The online bin-packing kernel built by ``//layers/layer4_execution:binpacking_module``.
BINPACKING_KERNEL = Artifact(
    "layers/layer4_execution/binpacking_module.wasm", "CHIMERA_BINPACKING_KERNEL_WASM"
)


def kernel_wasm_path() -> Path:
    """Path of ``execution_core_module.wasm``; FileNotFoundError lists where it looked."""
    return locate(KERNEL)


def kernel_wasm_bytes() -> bytes:
    """The kernel module's bytes."""
    return kernel_wasm_path().read_bytes()


def binpacking_wasm_bytes() -> bytes:
    """The bin-packing kernel module's bytes."""
    return locate(BINPACKING_KERNEL).read_bytes()
