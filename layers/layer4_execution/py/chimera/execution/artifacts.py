"""Where the built execution kernel lives (the one place that knows).

Order: ``$CHIMERA_EXECUTION_KERNEL_WASM``; Bazel runfiles (the
``bazel-runfiles`` library when installed, else ``$RUNFILES_DIR`` or
``$TEST_SRCDIR`` + ``chimera/<path>``); then the path relative to the working
directory, which is the runfiles root of workspace ``chimera`` under
``bazel test``.
"""

from __future__ import annotations

import os
from pathlib import Path

KERNEL_ENV = "CHIMERA_EXECUTION_KERNEL_WASM"
KERNEL_RUNFILE = "layers/layer4_execution/execution_kernel.wasm"
WORKSPACE = "chimera"


def kernel_wasm_path() -> Path:
    """Path of ``execution_kernel.wasm``; FileNotFoundError lists where it looked."""
    tried: list[str] = []
    env = os.environ.get(KERNEL_ENV)
    if env:
        return Path(env)
    loc = _rlocation(f"{WORKSPACE}/{KERNEL_RUNFILE}")
    if loc:
        tried.append(loc)
        if Path(loc).is_file():
            return Path(loc)
    for var in ("RUNFILES_DIR", "TEST_SRCDIR"):
        root = os.environ.get(var)
        if root:
            cand = Path(root) / WORKSPACE / KERNEL_RUNFILE
            tried.append(str(cand))
            if cand.is_file():
                return cand
    cand = Path(KERNEL_RUNFILE)
    tried.append(str(cand.absolute()))
    if cand.is_file():
        return cand
    raise FileNotFoundError(
        f"execution_kernel.wasm not found; set {KERNEL_ENV} (looked in: {', '.join(tried)})"
    )


def _rlocation(path: str) -> str | None:
    try:
        from runfiles import Runfiles  # bazel-runfiles; absent outside Bazel is fine
    except ImportError:
        return None
    rf = Runfiles.Create()
    loc = rf.Rlocation(path) if rf is not None else None
    return str(loc) if loc else None


def kernel_wasm_bytes() -> bytes:
    """The kernel module's bytes."""
    return kernel_wasm_path().read_bytes()
