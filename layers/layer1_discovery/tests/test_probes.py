"""Real host probes agree with what the host reports directly."""

from __future__ import annotations

import os
import platform

import psutil
import pytest

from chimera.discovery.probes import ALL_PROBES, HostProber
from chimera.v1 import discovery_pb2


@pytest.fixture(scope="module")
def prober() -> HostProber:
    return HostProber(toolchains=("python3", "surely-not-a-real-compiler"), top_processes=3)


def by_name(points: list[discovery_pb2.DataPoint]) -> dict[str, list[discovery_pb2.DataPoint]]:
    out: dict[str, list[discovery_pb2.DataPoint]] = {}
    for p in points:
        out.setdefault(p.name, []).append(p)
    return out


def test_cpu_probe(prober: HostProber) -> None:
    pts = by_name(prober.collect([discovery_pb2.PROBE_CPU]))
    assert pts["cpu.count.logical"][0].value == psutil.cpu_count()
    assert 0.0 <= pts["cpu.utilization"][0].value <= 100.0
    cores = pts["cpu.core.utilization"]
    assert len(cores) == psutil.cpu_count()
    assert sorted(int(p.labels["core"]) for p in cores) == list(range(len(cores)))
    assert pts["cpu.count.usable"][0].value == len(os.sched_getaffinity(0))
    assert pts["cpu.load.1m"][0].unit == "load"


def test_memory_probe(prober: HostProber) -> None:
    pts = by_name(prober.collect([discovery_pb2.PROBE_MEMORY]))
    assert pts["memory.total"][0].value == psutil.virtual_memory().total
    assert 0 < pts["memory.available"][0].value <= pts["memory.total"][0].value
    assert pts["memory.utilization"][0].unit == "percent"
    assert "swap.utilization" in pts


def test_disk_and_network_probes(prober: HostProber) -> None:
    pts = by_name(prober.collect([discovery_pb2.PROBE_DISK, discovery_pb2.PROBE_NETWORK]))
    for p in pts.get("disk.utilization", []):
        assert 0 <= p.value <= 100 and p.labels["mount"]
    interfaces = {p.labels["interface"] for p in pts["net.bytes_recv"]}
    assert "lo" in interfaces or interfaces  # loopback exists on Linux hosts
    assert set(psutil.net_io_counters(pernic=True)) >= interfaces


def test_process_probe_reports_top_processes(prober: HostProber) -> None:
    pts = by_name(prober.collect([discovery_pb2.PROBE_PROCESSES]))
    assert pts["process.count"][0].value >= 1
    ranks = [int(p.labels["rank"]) for p in pts["process.memory_rss"]]
    assert ranks == list(range(1, len(ranks) + 1)) and 1 <= len(ranks) <= 3
    rss = [p.value for p in pts["process.memory_rss"]]
    assert rss == sorted(rss, reverse=True)


def test_toolchain_probe_finds_python_and_reports_absence(prober: HostProber) -> None:
    pts = prober.collect([discovery_pb2.PROBE_TOOLCHAINS])
    tools = {p.labels["toolchain"]: p for p in pts if p.name == "toolchain.available"}
    assert tools["python"].labels["version"] == platform.python_version()
    assert tools["python"].value == 1
    assert tools["surely-not-a-real-compiler"].value == 0
    os_info = next(p for p in pts if p.name == "os.info")
    assert os_info.labels["system"] == platform.system()


def test_accelerator_probe_answers_even_without_gpus(prober: HostProber) -> None:
    pts = by_name(prober.collect([discovery_pb2.PROBE_ACCELERATORS]))
    count = pts["accelerator.count"][0]
    assert count.value >= 0
    assert len(pts.get("accelerator.memory.total", [])) == int(count.value)


def test_all_points_are_finite_and_within_label_limits(prober: HostProber) -> None:
    points = prober.collect(ALL_PROBES)
    assert len(points) > 20
    for p in points:
        assert p.name and len(p.labels) <= 32
        assert p.value == p.value and abs(p.value) != float("inf")
