"""Real probes of the host, one function per ``chimera.v1.Probe``.

Metric catalogue (name, unit, labels):

* CPU: ``cpu.count.logical``, ``cpu.count.physical``, ``cpu.count.usable``
  (the cores this process may run on) [count]; ``cpu.utilization`` and
  ``cpu.core.utilization`` {core} [percent] over the time since the previous
  collection (at least 50 ms, measured from ``/proc/stat`` deltas);
  ``cpu.load.1m|5m|15m`` [load]; ``cpu.frequency.current`` [megahertz].
* MEMORY: ``memory.total|available|used`` [bytes], ``memory.utilization``
  [percent], ``swap.total|used`` [bytes], ``swap.utilization`` [percent].
* DISK: per mount ``disk.total|used|free`` [bytes] and ``disk.utilization``
  [percent] {mount, device, fstype}; ``disk.io.read_bytes|write_bytes``
  [bytes] and ``disk.io.read_count|write_count`` [count] since boot.
* NETWORK: per interface ``net.bytes_sent|bytes_recv`` [bytes],
  ``net.packets_sent|packets_recv|errors_in|errors_out|drops_in|drops_out``
  [count] {interface}, counters since boot.
* PROCESSES: ``process.count`` [count]; the top N by CPU as
  ``process.cpu_utilization`` [percent] and by resident memory as
  ``process.memory_rss`` [bytes] {pid, name, rank}.
* TOOLCHAINS: ``toolchain.available`` (1 found, 0 not) {toolchain, version,
  path} for the running Python and each configured executable on PATH
  (``<exe> --version``, cached for five minutes); the operating system as
  ``os.info`` = 1 {system, release, machine, distribution} and ``os.uptime``
  [seconds].
* ACCELERATORS: ``accelerator.count`` {kind, source} (0 is a valid answer:
  no accelerator); per NVIDIA GPU (``nvidia-smi``, cached ten seconds)
  ``accelerator.memory.total|used`` [bytes] and ``accelerator.utilization``
  [percent] {index, name, vendor}.

Probes never raise for a missing facility (no swap, no disk counters in a
container, no GPU): they report what exists. Non-finite values are dropped.
"""

from __future__ import annotations

import math
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import psutil

from chimera.v1 import discovery_pb2

__all__ = ["ALL_PROBES", "HostProber", "point"]

ALL_PROBES: tuple[int, ...] = (
    discovery_pb2.PROBE_CPU,
    discovery_pb2.PROBE_MEMORY,
    discovery_pb2.PROBE_DISK,
    discovery_pb2.PROBE_NETWORK,
    discovery_pb2.PROBE_PROCESSES,
    discovery_pb2.PROBE_TOOLCHAINS,
    discovery_pb2.PROBE_ACCELERATORS,
)
MIB = 1024 * 1024
_MIN_CPU_SAMPLE_S = 0.05
_TOOLCHAIN_TTL_S = 300.0
_ACCELERATOR_TTL_S = 10.0
_MAX_MOUNTS = 16
_MAX_INTERFACES = 32
_VERSION = re.compile(r"\d+\.\d+(?:\.\d+)?")


def point(
    name: str, value: float, unit: str, /, **labels: object
) -> discovery_pb2.DataPoint | None:
    """A DataPoint, or None when ``value`` is not a finite number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    return discovery_pb2.DataPoint(
        name=name,
        value=number,
        unit=unit,
        labels={k: str(v) for k, v in labels.items()},
    )


@dataclass(frozen=True)
class _Gpu:
    index: str
    name: str
    memory_total_bytes: float
    memory_used_bytes: float
    utilization: float


class HostProber:
    """Runs probes; keeps the state deltas need (CPU times, process CPU).

    One lock serialises collections, so concurrent RPCs see coherent deltas
    ("since the previous collection by this service").
    """

    def __init__(self, toolchains: Sequence[str] = (), top_processes: int = 5) -> None:
        self._toolchains = tuple(toolchains)
        self._top = top_processes
        self._lock = threading.Lock()
        self._cpu_total = psutil.cpu_times()
        self._cpu_cores = psutil.cpu_times(percpu=True)
        self._cpu_at = time.monotonic()
        self._toolchain_cache: tuple[float, list[discovery_pb2.DataPoint]] | None = None
        self._gpu_cache: tuple[float, list[_Gpu], str] | None = None
        # Prime per-process CPU counters so the first collection has a delta.
        for proc in psutil.process_iter():
            try:
                proc.cpu_percent(None)
            except (psutil.Error, OSError):
                pass
        self._probes: dict[int, Callable[[], list[discovery_pb2.DataPoint | None]]] = {
            discovery_pb2.PROBE_CPU: self._cpu,
            discovery_pb2.PROBE_MEMORY: self._memory,
            discovery_pb2.PROBE_DISK: self._disk,
            discovery_pb2.PROBE_NETWORK: self._network,
            discovery_pb2.PROBE_PROCESSES: self._processes,
            discovery_pb2.PROBE_TOOLCHAINS: self._toolchains_probe,
            discovery_pb2.PROBE_ACCELERATORS: self._accelerators,
        }

    def collect(self, probes: Iterable[int]) -> list[discovery_pb2.DataPoint]:
        """Runs each probe once, in the order given (duplicates run once)."""
        points: list[discovery_pb2.DataPoint] = []
        with self._lock:
            for probe in dict.fromkeys(probes):
                points.extend(p for p in self._probes[probe]() if p is not None)
        return points

    # --- CPU ------------------------------------------------------------
    def _cpu(self) -> list[discovery_pb2.DataPoint | None]:
        wait = _MIN_CPU_SAMPLE_S - (time.monotonic() - self._cpu_at)
        if wait > 0:
            time.sleep(wait)
        total, cores = psutil.cpu_times(), psutil.cpu_times(percpu=True)
        out = [
            point("cpu.count.logical", psutil.cpu_count(logical=True) or 0, "count"),
            point("cpu.utilization", _busy_percent(self._cpu_total, total), "percent"),
        ]
        physical = psutil.cpu_count(logical=False)
        if physical:
            out.append(point("cpu.count.physical", physical, "count"))
        if hasattr(os, "sched_getaffinity"):
            out.append(point("cpu.count.usable", len(os.sched_getaffinity(0)), "count"))
        for i, (before, after) in enumerate(zip(self._cpu_cores, cores)):
            busy = _busy_percent(before, after)
            out.append(point("cpu.core.utilization", busy, "percent", core=i))
        self._cpu_total, self._cpu_cores, self._cpu_at = total, cores, time.monotonic()
        try:
            for label, load in zip(("1m", "5m", "15m"), psutil.getloadavg()):
                out.append(point(f"cpu.load.{label}", load, "load"))
        except (OSError, AttributeError):
            pass
        try:
            freq = psutil.cpu_freq()
        except (OSError, NotImplementedError, FileNotFoundError):
            freq = None
        if freq is not None and freq.current > 0:
            out.append(point("cpu.frequency.current", freq.current, "megahertz"))
        return out

    # --- memory ---------------------------------------------------------
    def _memory(self) -> list[discovery_pb2.DataPoint | None]:
        vm = psutil.virtual_memory()
        out = [
            point("memory.total", vm.total, "bytes"),
            point("memory.available", vm.available, "bytes"),
            point("memory.used", vm.used, "bytes"),
            point("memory.utilization", vm.percent, "percent"),
        ]
        try:
            sw = psutil.swap_memory()
        except (OSError, RuntimeError):
            return out
        out += [
            point("swap.total", sw.total, "bytes"),
            point("swap.used", sw.used, "bytes"),
            point("swap.utilization", sw.percent if sw.total else 0.0, "percent"),
        ]
        return out

    # --- disk -----------------------------------------------------------
    def _disk(self) -> list[discovery_pb2.DataPoint | None]:
        out: list[discovery_pb2.DataPoint | None] = []
        seen: set[str] = set()
        try:
            partitions = sorted(psutil.disk_partitions(all=False), key=lambda p: p.mountpoint)
        except OSError:
            partitions = []
        for part in partitions:
            if part.mountpoint in seen or len(seen) >= _MAX_MOUNTS:
                continue
            try:
                usage = psutil.disk_usage(part.mountpoint)
            except OSError:
                continue
            seen.add(part.mountpoint)
            labels = {"mount": part.mountpoint, "device": part.device, "fstype": part.fstype}
            out += [
                point("disk.total", usage.total, "bytes", **labels),
                point("disk.used", usage.used, "bytes", **labels),
                point("disk.free", usage.free, "bytes", **labels),
                point("disk.utilization", usage.percent, "percent", **labels),
            ]
        try:
            io = psutil.disk_io_counters(perdisk=False)
        except (OSError, RuntimeError):
            io = None
        if io is not None:
            out += [
                point("disk.io.read_bytes", io.read_bytes, "bytes"),
                point("disk.io.write_bytes", io.write_bytes, "bytes"),
                point("disk.io.read_count", io.read_count, "count"),
                point("disk.io.write_count", io.write_count, "count"),
            ]
        return out

    # --- network --------------------------------------------------------
    def _network(self) -> list[discovery_pb2.DataPoint | None]:
        out: list[discovery_pb2.DataPoint | None] = []
        try:
            counters = psutil.net_io_counters(pernic=True)
        except OSError:
            return out
        for name in sorted(counters)[:_MAX_INTERFACES]:
            c = counters[name]
            out += [
                point("net.bytes_sent", c.bytes_sent, "bytes", interface=name),
                point("net.bytes_recv", c.bytes_recv, "bytes", interface=name),
                point("net.packets_sent", c.packets_sent, "count", interface=name),
                point("net.packets_recv", c.packets_recv, "count", interface=name),
                point("net.errors_in", c.errin, "count", interface=name),
                point("net.errors_out", c.errout, "count", interface=name),
                point("net.drops_in", c.dropin, "count", interface=name),
                point("net.drops_out", c.dropout, "count", interface=name),
            ]
        return out

    # --- processes ------------------------------------------------------
    def _processes(self) -> list[discovery_pb2.DataPoint | None]:
        rows: list[tuple[int, str, float, int]] = []
        for proc in psutil.process_iter(["pid", "name", "memory_info"]):
            try:
                cpu = proc.cpu_percent(None)
            except (psutil.Error, OSError):
                continue
            info = proc.info
            rss = info["memory_info"].rss if info.get("memory_info") is not None else 0
            rows.append((info["pid"], info.get("name") or "?", cpu, rss))
        out = [point("process.count", len(rows), "count")]
        by_cpu = sorted(rows, key=lambda r: (-r[2], r[0]))[: self._top]
        for rank, (pid, name, cpu, _) in enumerate(by_cpu, 1):
            out.append(
                point("process.cpu_utilization", cpu, "percent", pid=pid, name=name, rank=rank)
            )
        by_mem = sorted(rows, key=lambda r: (-r[3], r[0]))[: self._top]
        for rank, (pid, name, _, rss) in enumerate(by_mem, 1):
            out.append(point("process.memory_rss", rss, "bytes", pid=pid, name=name, rank=rank))
        return out

    # --- toolchains and OS -----------------------------------------------
    def _toolchains_probe(self) -> list[discovery_pb2.DataPoint | None]:
        now = time.monotonic()
        if self._toolchain_cache is None or now - self._toolchain_cache[0] > _TOOLCHAIN_TTL_S:
            found: list[discovery_pb2.DataPoint] = []
            python = point(
                "toolchain.available",
                1,
                "bool",
                toolchain="python",
                version=platform.python_version(),
                path=sys.executable,
            )
            if python is not None:
                found.append(python)
            for exe in self._toolchains:
                found.append(_toolchain(exe))
            self._toolchain_cache = (now, found)
        out: list[discovery_pb2.DataPoint | None] = list(self._toolchain_cache[1])
        out.append(
            point(
                "os.info",
                1,
                "bool",
                system=platform.system(),
                release=platform.release(),
                machine=platform.machine(),
                distribution=_distribution(),
            )
        )
        out.append(point("os.uptime", time.time() - psutil.boot_time(), "seconds"))
        return out

    # --- accelerators ---------------------------------------------------
    def _accelerators(self) -> list[discovery_pb2.DataPoint | None]:
        now = time.monotonic()
        if self._gpu_cache is None or now - self._gpu_cache[0] > _ACCELERATOR_TTL_S:
            gpus, source = _query_nvidia()
            self._gpu_cache = (now, gpus, source)
        _, gpus, source = self._gpu_cache
        out = [point("accelerator.count", len(gpus), "count", kind="gpu", source=source)]
        for g in gpus:
            labels = {"index": g.index, "name": g.name, "vendor": "nvidia"}
            out += [
                point("accelerator.memory.total", g.memory_total_bytes, "bytes", **labels),
                point("accelerator.memory.used", g.memory_used_bytes, "bytes", **labels),
                point("accelerator.utilization", g.utilization, "percent", **labels),
            ]
        return out


def _busy_percent(before: object, after: object) -> float:
    """Share of non-idle time between two ``cpu_times`` snapshots (idle includes iowait)."""

    def split(t: object) -> tuple[float, float]:
        fields = t._asdict()  # type: ignore[attr-defined]
        idle = fields.get("idle", 0.0) + fields.get("iowait", 0.0)
        # guest time is already counted in user time on Linux.
        total = sum(v for k, v in fields.items() if k not in ("guest", "guest_nice"))
        return total, idle

    total0, idle0 = split(before)
    total1, idle1 = split(after)
    dt = total1 - total0
    if dt <= 0:
        return 0.0
    return max(0.0, min(100.0, 100.0 * (1.0 - (idle1 - idle0) / dt)))


def _toolchain(exe: str) -> discovery_pb2.DataPoint:
    path = shutil.which(exe)
    if path is None:
        p = point("toolchain.available", 0, "bool", toolchain=exe)
        assert p is not None
        return p
    version = "unknown"
    try:
        run = subprocess.run(
            [path, "--version"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        match = _VERSION.search(run.stdout or run.stderr or "")
        if match:
            version = match.group(0)
    except (OSError, subprocess.SubprocessError):
        pass
    p = point("toolchain.available", 1, "bool", toolchain=exe, version=version, path=path)
    assert p is not None
    return p


def _distribution() -> str:
    try:
        with open("/etc/os-release", encoding="utf-8") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "unknown"


def _query_nvidia() -> tuple[list[_Gpu], str]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return [], "none"
    try:
        run = subprocess.run(
            [
                exe,
                "--query-gpu=index,name,memory.total,memory.used,utilization.gpu",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return [], "nvidia-smi-failed"
    if run.returncode != 0:
        return [], "nvidia-smi-failed"
    gpus: list[_Gpu] = []
    for line in run.stdout.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 5:
            continue
        index, name, total, used, util = parts
        gpus.append(
            _Gpu(index, name, _number(total) * MIB, _number(used) * MIB, _number(util))
        )
    return gpus, "nvidia-smi"


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan
