"""The host probe: real cores, memory, storage and devices (no GPU is a valid answer)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import psutil

from chimera.resources.inventory import DeviceInfo, _merge, probe_host
from chimera.v1 import resources_pb2

GPU = resources_pb2.DEVICE_KIND_GPU
CPU = resources_pb2.DEVICE_KIND_CPU


def test_probe_reports_this_host(tmp_path: Path) -> None:
    host = probe_host(str(tmp_path))
    assert host.cpu_cores == len(os.sched_getaffinity(0))
    assert host.memory_bytes == psutil.virtual_memory().total
    free = psutil.disk_usage(str(tmp_path)).free
    assert abs(host.storage_bytes - free) <= 1 << 30  # other writers on the disk move it a little
    # JAX always has a backend; on a host without accelerators it is the CPU.
    assert host.devices, host.accelerator_probe
    assert host.accelerator_probe.startswith("jax ")
    platforms = sorted(
        {d.platform.removeprefix("jax:") for d in host.devices if d.platform.startswith("jax:")}
    )
    assert host.accelerator_probe.split(";")[0].endswith(", ".join(platforms))
    assert all(d.id and d.platform and d.name for d in host.devices)
    if shutil.which("nvidia-smi") is None:
        assert "nvidia-smi: not found" in host.accelerator_probe
        jax_gpus = [d for d in host.devices if d.kind == GPU]
        assert len(host.accelerators) == len(jax_gpus)
    if not host.accelerators:
        assert {d.kind for d in host.devices} == {CPU}
        assert all(d.memory_bytes == 0 for d in host.devices)


def test_probe_without_jax_still_answers() -> None:
    host = probe_host(".", use_jax=False)
    assert "jax: not asked" in host.accelerator_probe
    assert host.cpu_cores >= 1 and host.memory_bytes > 0


def dev(i: int, kind: int, memory: int, platform: str) -> DeviceInfo:
    return DeviceInfo(f"{'gpu' if kind == GPU else 'cpu'}:{i}", kind, "x", memory, platform)


def test_nvidia_smi_fills_memory_or_stands_in_for_jax() -> None:
    smi = [dev(0, GPU, 80 << 30, "nvidia-smi"), dev(1, GPU, 80 << 30, "nvidia-smi")]
    # A CUDA jaxlib that did not report memory: nvidia-smi's figure is used.
    merged = _merge([dev(0, GPU, 0, "jax:gpu"), dev(1, GPU, 40 << 30, "jax:gpu")], smi)
    assert [(d.platform, d.memory_bytes) for d in merged] == [
        ("jax:gpu", 80 << 30),
        ("jax:gpu", 40 << 30),
    ]
    # A CPU-only jaxlib on a GPU host: the CPU device plus nvidia-smi's GPUs.
    merged = _merge([dev(0, CPU, 0, "jax:cpu")], smi)
    assert [d.platform for d in merged] == ["jax:cpu", "nvidia-smi", "nvidia-smi"]
    assert _merge([dev(0, CPU, 0, "jax:cpu")], []) == [dev(0, CPU, 0, "jax:cpu")]
