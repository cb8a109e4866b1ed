"""The host's pool, probed for real.

* cores: the cores this process may run on (``os.sched_getaffinity``), else
  ``psutil.cpu_count()``;
* memory: ``psutil.virtual_memory().total``;
* storage: ``psutil.disk_usage(storage_path).free``, what can still be
  handed out on the filesystem holding ``storage_path``;
* devices: ``jax.devices()`` (every device of JAX's default backend, CPU
  ones included, each with its ``memory_stats()["bytes_limit"]`` when the
  backend reports it), then ``nvidia-smi`` where it is installed: its GPUs
  fill in memory JAX did not report, or are listed themselves when JAX has
  no GPU backend (a CPU-only jaxlib on a GPU host). No accelerator at all is
  a valid answer: only CPU devices are listed and ``gpu_count`` is 0.

Only GPUs and TPUs are allocatable devices (``gpu_count`` in a request); CPU
devices are listed for information. JAX is imported on the first probe with
``XLA_PYTHON_CLIENT_PREALLOCATE=false`` (unless set), so probing never
reserves accelerator memory.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from chimera.v1 import resources_pb2

__all__ = ["DeviceInfo", "HostInventory", "InventorySource", "probe_host"]

_log = logging.getLogger("chimera.resources.inventory")
MIB = 1 << 20
_KINDS = {
    "cpu": resources_pb2.DEVICE_KIND_CPU,
    "gpu": resources_pb2.DEVICE_KIND_GPU,
    "cuda": resources_pb2.DEVICE_KIND_GPU,
    "rocm": resources_pb2.DEVICE_KIND_GPU,
    "tpu": resources_pb2.DEVICE_KIND_TPU,
}
_PREFIX = {
    resources_pb2.DEVICE_KIND_CPU: "cpu",
    resources_pb2.DEVICE_KIND_GPU: "gpu",
    resources_pb2.DEVICE_KIND_TPU: "tpu",
}


@dataclass(frozen=True)
class DeviceInfo:
    """One device (mirrors ``chimera.v1.Device`` without the holder)."""

    id: str
    kind: int
    name: str
    memory_bytes: int
    platform: str

    @property
    def allocatable(self) -> bool:
        return self.kind in (resources_pb2.DEVICE_KIND_GPU, resources_pb2.DEVICE_KIND_TPU)


@dataclass(frozen=True)
class HostInventory:
    """What the host offers; ``accelerator_probe`` says how devices were found."""

    cpu_cores: float
    memory_bytes: int
    storage_bytes: int
    devices: tuple[DeviceInfo, ...]
    accelerator_probe: str
    observed_at: float

    @property
    def accelerators(self) -> tuple[DeviceInfo, ...]:
        return tuple(d for d in self.devices if d.allocatable)


#: A probe: returns the inventory now (tests inject fixed ones).
InventorySource = Callable[[], HostInventory]


def probe_host(storage_path: Path | str = ".", *, use_jax: bool = True) -> HostInventory:
    """Probes cores, memory, storage and devices of this host."""
    try:
        cores = float(len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        cores = float(psutil.cpu_count(logical=True) or 1)
    memory = int(psutil.virtual_memory().total)
    storage = int(psutil.disk_usage(str(storage_path)).free)
    jax_devices, jax_note = _jax_devices() if use_jax else ([], "jax: not asked")
    nvidia, nvidia_note = _nvidia_gpus()
    devices = _merge(jax_devices, nvidia)
    return HostInventory(
        cpu_cores=cores,
        memory_bytes=memory,
        storage_bytes=storage,
        devices=tuple(devices),
        accelerator_probe=f"{jax_note}; {nvidia_note}",
        observed_at=time.time(),
    )


def _jax_devices() -> tuple[list[DeviceInfo], str]:
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    try:
        import jax  # heavy: imported only when the host is probed
    except ImportError as exc:
        return [], f"jax: not importable ({exc})"
    try:
        found = jax.devices()
    except RuntimeError as exc:  # no backend could start
        return [], f"jax {jax.__version__}: no backend ({exc})"
    devices = []
    for d in found:
        kind = _KINDS.get(str(d.platform).lower(), resources_pb2.DEVICE_KIND_UNSPECIFIED)
        memory = 0
        if kind != resources_pb2.DEVICE_KIND_CPU:
            try:
                memory = int((d.memory_stats() or {}).get("bytes_limit", 0))
            except (RuntimeError, NotImplementedError):
                memory = 0
        prefix = _PREFIX.get(kind, str(d.platform))
        devices.append(
            DeviceInfo(f"{prefix}:{d.id}", kind, str(d.device_kind), memory, f"jax:{d.platform}")
        )
    platforms = sorted({str(d.platform) for d in found})
    return devices, f"jax {jax.__version__}: {', '.join(platforms) or 'no devices'}"


def _nvidia_gpus() -> tuple[list[DeviceInfo], str]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return [], "nvidia-smi: not found"
    try:
        run = subprocess.run(
            [exe, "--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return [], f"nvidia-smi: failed ({exc})"
    if run.returncode != 0:
        return [], f"nvidia-smi: exit {run.returncode}"
    gpus = []
    for line in run.stdout.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3 or not parts[0].isdigit():
            continue
        try:
            memory = int(float(parts[2]) * MIB)
        except ValueError:
            memory = 0
        gpus.append(
            DeviceInfo(
                f"gpu:{parts[0]}", resources_pb2.DEVICE_KIND_GPU, parts[1], memory, "nvidia-smi"
            )
        )
    return gpus, f"nvidia-smi: {len(gpus)} GPU(s)"


def _merge(jax_devices: list[DeviceInfo], nvidia: list[DeviceInfo]) -> list[DeviceInfo]:
    """JAX's devices, with memory from nvidia-smi where JAX gave none; nvidia-smi's
    GPUs themselves when JAX saw no GPU."""
    jax_gpus = [d for d in jax_devices if d.kind == resources_pb2.DEVICE_KIND_GPU]
    if not jax_gpus:
        return jax_devices + nvidia
    by_id = {g.id: g for g in nvidia}
    merged = []
    for d in jax_devices:
        smi = by_id.get(d.id)
        if d.memory_bytes == 0 and smi is not None:
            d = DeviceInfo(d.id, d.kind, d.name, smi.memory_bytes, d.platform)
        merged.append(d)
    return merged
