"""ResourcesService on a real loopback server over a fixed pool and a hand-moved clock."""

from __future__ import annotations

import dataclasses
import re
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from prometheus_client.parser import text_string_to_metric_families
import pytest

from chimera.framework import ServerConfig
from chimera.resources.client import ResourcesClient
from chimera.resources.core import ResourcesCore
from chimera.resources.inventory import DeviceInfo, HostInventory
from chimera.resources.main import Options, build_server, main, parse_args
from chimera.testing.helpers import FakeClock, wait_until
from chimera.v1 import common_pb2, resources_pb2, resources_pb2_grpc

GIB = 1 << 30
GPU = resources_pb2.DEVICE_KIND_GPU
START = 1_800_000_000.0
#: No lease reaper thread: leases expire on calls only, so a test that moves a fake clock
#: sees the effect at its next call and never halfway.
NO_REAPER = Options(reap_interval_seconds=None)
# The shipped resources.json rates.
CPU_RATE, MEM_RATE, GPU_RATE, STORAGE_RATE = 0.04, 0.005, 2.5, 0.0001


def host() -> HostInventory:
    return HostInventory(
        cpu_cores=8.0,
        memory_bytes=16 * GIB,
        storage_bytes=100 * GIB,
        devices=(
            DeviceInfo("cpu:0", resources_pb2.DEVICE_KIND_CPU, "cpu", 0, "jax:cpu"),
            DeviceInfo("gpu:0", GPU, "big", 80 * GIB, "jax:gpu"),
            DeviceInfo("gpu:1", GPU, "small", 16 * GIB, "jax:gpu"),
        ),
        accelerator_probe="fixed for the test",
        observed_at=START,
    )


@dataclass
class Env:
    stub: resources_pb2_grpc.ResourcesServiceStub
    clock: FakeClock
    metrics_url: str


@pytest.fixture(scope="module")
def core() -> ResourcesCore:
    return ResourcesCore.load()


@pytest.fixture
def env(core: ResourcesCore) -> Iterator[Env]:
    clock = FakeClock(START)
    config = ServerConfig(port=0, metrics_port=0)
    with build_server(config, NO_REAPER, core=core, probe=host, clock=clock) as server:
        with grpc.insecure_channel(server.target) as channel:
            url = f"http://127.0.0.1:{server.metrics_port}/metrics"
            yield Env(resources_pb2_grpc.ResourcesServiceStub(channel), clock, url)


def req(
    cpu: float = 1.0, memory_gib: int = 1, gpus: int = 0, minutes: int = 60, **kw: Any
) -> resources_pb2.ResourceRequest:
    return resources_pb2.ResourceRequest(
        requesting_layer=kw.pop("layer", common_pb2.LAYER_GENETICS),
        requirements=common_pb2.ResourceRequirements(
            cpu_cores=cpu,
            memory_bytes=memory_gib * GIB,
            gpu_count=gpus,
            gpu_memory_bytes=int(kw.pop("gpu_memory_gib", 0)) * GIB,
            storage_bytes=int(kw.pop("storage_gib", 0)) * GIB,
        ),
        duration_minutes=minutes,
        **kw,
    )


def code_of(call: Callable[..., Any], *args: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as err:
        call(*args, timeout=10)
    return err.value.code(), err.value.details()


def metric(env: Env, series: str) -> float:
    """One scraped series, written ``name{label="value",...}`` in any label order; 0 if absent."""
    name, _, labels = series.partition("{")
    wanted = dict(re.findall(r'(\w+)="([^"]*)"', labels))
    with urllib.request.urlopen(env.metrics_url, timeout=5) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == wanted:
                return sample.value
    return 0.0


def test_inventory_shows_the_pool_and_rates(env: Env) -> None:
    inv = env.stub.GetInventory(resources_pb2.GetInventoryRequest(), timeout=10)
    assert inv.capacity.cpu_cores == 8 and inv.capacity.memory_bytes == 16 * GIB
    assert inv.capacity.gpu_count == 2 and inv.capacity.gpu_memory_bytes == 96 * GIB
    assert inv.available == inv.capacity and inv.allocated.cpu_cores == 0
    assert [d.id for d in inv.devices] == ["cpu:0", "gpu:0", "gpu:1"]
    assert inv.rates.usd_per_gpu_hour == GPU_RATE
    assert inv.accelerator_probe == "fixed for the test"
    assert inv.observed_at.seconds == int(START)


def test_allocate_and_release_return_the_share(env: Env) -> None:
    a = env.stub.Allocate(req(cpu=3, memory_gib=4, gpus=1, gpu_memory_gib=10), timeout=10)
    assert a.status == resources_pb2.ALLOCATION_STATUS_ACTIVE
    assert list(a.device_ids) == ["gpu:1"]  # best fit: the 16 GiB device, not the 80 GiB one
    assert a.expires_at.seconds - a.allocated_at.seconds == 3600
    assert a.request.priority == common_pb2.PRIORITY_NORMAL
    inv = env.stub.GetInventory(resources_pb2.GetInventoryRequest(), timeout=10)
    assert inv.available.cpu_cores == 5 and inv.available.memory_bytes == 12 * GIB
    assert inv.allocated.gpu_count == 1 and inv.allocated.gpu_memory_bytes == 16 * GIB
    assert {d.id: d.allocation_id for d in inv.devices}["gpu:1"] == a.id
    assert inv.active_allocations == 1
    released = env.stub.Release(resources_pb2.ReleaseRequest(allocation_id=a.id), timeout=10)
    assert released.status == resources_pb2.ALLOCATION_STATUS_RELEASED and released.ended_at.seconds
    again = env.stub.Release(resources_pb2.ReleaseRequest(allocation_id=a.id), timeout=10)
    assert again == released  # idempotent
    inv = env.stub.GetInventory(resources_pb2.GetInventoryRequest(), timeout=10)
    assert inv.available == inv.capacity and inv.active_allocations == 0
    listed = env.stub.ListAllocations(resources_pb2.ListAllocationsRequest(), timeout=10)
    assert [x.id for x in listed.allocations] == [a.id]
    assert metric(env, 'layer8_allocations_total{layer="LAYER_GENETICS"}') == 1
    assert metric(env, "layer8_releases_total") == 1


def test_over_limit_requests_are_refused_naming_the_resource(env: Env) -> None:
    code, text = code_of(env.stub.Allocate, req(cpu=9))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert text.startswith("requirements.cpu_cores") and "whole pool has 8 cores" in text
    code, text = code_of(env.stub.Allocate, req(gpus=3))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and text.startswith("requirements.gpu_count")
    code, text = code_of(env.stub.Allocate, req(storage_gib=101))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert text.startswith("requirements.storage_bytes") and "whole pool has 100 GiB" in text
    env.stub.Allocate(req(cpu=1, gpus=2), timeout=10)
    code, text = code_of(env.stub.Allocate, req(cpu=1, gpus=1))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert text.startswith("requirements.gpu_count") and "only 0 free now" in text
    env.stub.Allocate(req(cpu=1, memory_gib=14), timeout=10)
    code, text = code_of(env.stub.Allocate, req(cpu=1, memory_gib=2))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert text.startswith("requirements.memory_bytes")
    assert metric(env, 'layer8_refusals_total{resource="gpu_count",reason="no_room"}') == 1
    assert metric(env, 'layer8_refusals_total{resource="cpu_cores",reason="too_large"}') == 1


def test_expired_lease_returns_the_share(env: Env) -> None:
    whole = env.stub.Allocate(req(cpu=8, minutes=1), timeout=10)
    assert code_of(env.stub.Allocate, req(cpu=1))[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
    env.clock.advance(59)
    inv = env.stub.GetInventory(resources_pb2.GetInventoryRequest(), timeout=10)
    assert inv.available.cpu_cores == 0
    env.clock.advance(1)  # the holder never released: its minute is up
    inv = env.stub.GetInventory(resources_pb2.GetInventoryRequest(), timeout=10)
    assert inv.available.cpu_cores == 8 and inv.active_allocations == 0
    expired = env.stub.ListAllocations(
        resources_pb2.ListAllocationsRequest(status=resources_pb2.ALLOCATION_STATUS_EXPIRED),
        timeout=10,
    )
    assert [a.id for a in expired.allocations] == [whole.id]
    assert expired.allocations[0].ended_at == whole.expires_at
    assert metric(env, 'layer8_lease_expiries_total{cause="duration"}') == 1


def test_heartbeat_lease_expires_unless_renewed(env: Env) -> None:
    a = env.stub.Allocate(req(cpu=4, lease_seconds=10), timeout=10)
    assert a.lease_expires_at.seconds == int(START) + 10
    env.clock.advance(8)
    renewed = env.stub.RenewLease(resources_pb2.RenewLeaseRequest(allocation_id=a.id), timeout=10)
    assert renewed.lease_expires_at.seconds == int(START) + 18
    env.clock.advance(9)  # 17 s: still held thanks to the renewal, so 5 cores do not fit
    assert code_of(env.stub.Allocate, req(cpu=5))[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
    env.clock.advance(2)  # 19 s: the holder stopped renewing ("died"): its 4 cores are back
    later = env.stub.Allocate(req(cpu=5), timeout=10)
    assert later.status == resources_pb2.ALLOCATION_STATUS_ACTIVE
    got = env.stub.ListAllocations(resources_pb2.ListAllocationsRequest(), timeout=10)
    status = {x.id: x for x in got.allocations}[a.id]
    assert status.status == resources_pb2.ALLOCATION_STATUS_EXPIRED
    assert status.ended_at.seconds == int(START) + 18
    code, text = code_of(env.stub.RenewLease, resources_pb2.RenewLeaseRequest(allocation_id=a.id))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "EXPIRED" in text
    assert metric(env, 'layer8_lease_expiries_total{cause="heartbeat"}') == 1


def test_cost_is_rate_times_units_times_hours(env: Env) -> None:
    request = req(cpu=2, memory_gib=4, gpus=1, minutes=90, storage_gib=10)
    cost = env.stub.EstimateCost(request, timeout=10)
    assert cost.cpu_usd_per_hour == pytest.approx(2 * CPU_RATE)
    assert cost.memory_usd_per_hour == pytest.approx(4 * MEM_RATE)
    assert cost.gpu_usd_per_hour == pytest.approx(GPU_RATE)
    assert cost.storage_usd_per_hour == pytest.approx(10 * STORAGE_RATE)
    per_hour = 2 * CPU_RATE + 4 * MEM_RATE + GPU_RATE + 10 * STORAGE_RATE
    assert cost.total_usd_per_hour == pytest.approx(per_hour)
    assert cost.total_usd == pytest.approx(per_hour * 1.5) and cost.duration_minutes == 90
    granted = env.stub.Allocate(request, timeout=10)
    assert granted.cost == cost
    assert metric(env, "layer8_cost_usd_total") == pytest.approx(per_hour * 1.5)
    assert metric(env, "layer8_active_cost_usd_per_hour") == pytest.approx(per_hour)


def test_max_cost_per_hour_is_honoured(env: Env) -> None:
    per_hour = 2 * CPU_RATE + 1 * MEM_RATE + GPU_RATE
    code, text = code_of(env.stub.Allocate, req(cpu=2, gpus=1, max_cost_usd_per_hour=2.0))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert text.startswith("max_cost_usd_per_hour") and f"{per_hour:.6g} USD/h" in text
    ok = env.stub.Allocate(req(cpu=2, gpus=1, max_cost_usd_per_hour=per_hour), timeout=10)
    assert ok.cost.total_usd_per_hour <= per_hour
    label = 'layer8_refusals_total{resource="max_cost_usd_per_hour",reason="max_cost"}'
    assert metric(env, label) == 1


def job(env: Env, name: str, priority: int, cpu: float, **kw: Any) -> resources_pb2.ScheduledJob:
    return env.stub.ScheduleJob(
        resources_pb2.ScheduleJobRequest(
            name=name,
            request=req(cpu=cpu, priority=priority, minutes=kw.pop("minutes", 30)),
            **kw,
        ),
        timeout=10,
    )


def test_job_queue_grants_by_priority_then_fifo(env: Env) -> None:
    first = job(env, "fills the pool", common_pb2.PRIORITY_NORMAL, 8)
    assert first.status == resources_pb2.JOB_STATUS_RUNNING and first.allocation.id
    low = job(env, "low", common_pb2.PRIORITY_LOW, 4)
    normal_a = job(env, "normal a", common_pb2.PRIORITY_NORMAL, 4)
    high = job(env, "high", common_pb2.PRIORITY_HIGH, 4)
    normal_b = job(env, "normal b", common_pb2.PRIORITY_NORMAL, 4)
    positions = {
        j.name: env.stub.GetJob(resources_pb2.GetJobRequest(job_id=j.id), timeout=10).queue_position
        for j in (low, normal_a, high, normal_b)
    }
    assert positions == {"high": 1, "normal a": 2, "normal b": 3, "low": 4}
    assert env.stub.GetInventory(resources_pb2.GetInventoryRequest(), timeout=10).queued_jobs == 4
    done = env.stub.CancelJob(resources_pb2.CancelJobRequest(job_id=first.id), timeout=10)
    assert done.status == resources_pb2.JOB_STATUS_FINISHED
    state = {
        j.name: env.stub.GetJob(resources_pb2.GetJobRequest(job_id=j.id), timeout=10).status
        for j in (low, normal_a, high, normal_b)
    }
    running, queued = resources_pb2.JOB_STATUS_RUNNING, resources_pb2.JOB_STATUS_QUEUED
    assert state == {"high": running, "normal a": running, "normal b": queued, "low": queued}
    # The running ones' time runs out; the rest follow in order.
    env.clock.advance(30 * 60)
    state = {
        j.name: env.stub.GetJob(resources_pb2.GetJobRequest(job_id=j.id), timeout=10).status
        for j in (low, normal_a, high, normal_b)
    }
    finished = resources_pb2.JOB_STATUS_FINISHED
    assert state == {"high": finished, "normal a": finished, "normal b": running, "low": running}
    cancelled = job(env, "waits", common_pb2.PRIORITY_CRITICAL, 1)
    assert cancelled.status == queued and cancelled.queue_position == 1
    out = env.stub.CancelJob(resources_pb2.CancelJobRequest(job_id=cancelled.id), timeout=10)
    assert out.status == resources_pb2.JOB_STATUS_CANCELLED


def test_grant_bounds_the_run(env: Env) -> None:
    run = env.stub.ScheduleJob(
        resources_pb2.ScheduleJobRequest(
            name="evolve packer", request=req(cpu=2, gpus=1, minutes=20), population_size=100000
        ),
        timeout=10,
    )
    assert run.status == resources_pb2.JOB_STATUS_RUNNING
    g = run.grant
    assert g.max_population == 2 * 256 + 8192  # resources.json: per core, per GPU
    assert list(g.device_ids) == list(run.allocation.device_ids) and len(g.device_ids) == 1
    assert g.cpu_cores == 2 and g.wall_time_seconds == 1200
    assert g.deadline == run.allocation.expires_at
    assert g.cost_usd == pytest.approx(run.estimated_cost.total_usd)
    small = job(env, "small", common_pb2.PRIORITY_NORMAL, 1, population_size=64)
    assert small.grant.max_population == 64


def test_jobs_over_budget_or_pool_are_rejected(env: Env) -> None:
    # 1 core, 1 GiB for 30 min: (0.04 + 0.005) / 2 = 0.0225 USD.
    over = job(env, "pricey", common_pb2.PRIORITY_HIGH, 1, budget_usd=0.02)
    assert over.status == resources_pb2.JOB_STATUS_REJECTED
    assert over.reason.startswith("budget_usd")
    assert over.estimated_cost.total_usd == pytest.approx(0.0225)
    fits = job(env, "cheap enough", common_pb2.PRIORITY_HIGH, 1, budget_usd=0.0225)
    assert fits.status == resources_pb2.JOB_STATUS_RUNNING
    huge = job(env, "huge", common_pb2.PRIORITY_HIGH, 64)
    assert huge.status == resources_pb2.JOB_STATUS_REJECTED
    assert huge.reason.startswith("requirements.cpu_cores")
    assert metric(env, 'layer8_refusals_total{resource="budget_usd",reason="budget"}') == 1


schedule = resources_pb2.ScheduleJobRequest


@pytest.mark.parametrize(
    ("method", "message", "field"),
    [
        ("Allocate", req(layer=common_pb2.LAYER_UNSPECIFIED), "requesting_layer"),
        ("Allocate", req(minutes=0), "duration_minutes"),
        ("Allocate", req(minutes=20000), "duration_minutes"),
        ("Allocate", req(max_cost_usd_per_hour=float("nan")), "max_cost_usd_per_hour"),
        ("Allocate", req(max_cost_usd_per_hour=-1.0), "max_cost_usd_per_hour"),
        ("Allocate", req(cpu=float("inf")), "requirements.cpu_cores"),
        ("Allocate", req(cpu=0, memory_gib=0), "requirements"),
        ("Allocate", req(gpu_memory_gib=1), "requirements.gpu_memory_bytes"),
        ("Allocate", req(layer=42), "requesting_layer"),
        ("Allocate", req(priority=7), "priority"),
        ("Allocate", req(minutes=1, lease_seconds=61), "lease_seconds"),
        ("EstimateCost", req(minutes=0), "duration_minutes"),
        ("Release", resources_pb2.ReleaseRequest(), "allocation_id"),
        ("RenewLease", resources_pb2.RenewLeaseRequest(), "allocation_id"),
        ("ScheduleJob", schedule(request=req()), "name"),
        ("ScheduleJob", schedule(name="x"), "request"),
        ("ScheduleJob", schedule(name="x", request=req(minutes=0)), "request.duration_minutes"),
        ("ScheduleJob", schedule(name="x", request=req(cpu=0, memory_gib=0)), "request.requirements"),
        ("ScheduleJob", schedule(name="x", request=req(), budget_usd=-1), "budget_usd"),
        ("ScheduleJob", schedule(name="x", request=req(), population_size=10**8), "population_size"),
        ("GetJob", resources_pb2.GetJobRequest(), "job_id"),
        ("CancelJob", resources_pb2.CancelJobRequest(job_id="x" * 200), "job_id"),
        ("ListAllocations", resources_pb2.ListAllocationsRequest(limit=20000), "limit"),
    ],
)
def test_bad_input_names_the_field(env: Env, method: str, message: object, field: str) -> None:
    code, text = code_of(getattr(env.stub, method), message)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, text
    assert f"'{field}'" in text


def test_unknown_ids_are_not_found(env: Env) -> None:
    for call, message in [
        (env.stub.Release, resources_pb2.ReleaseRequest(allocation_id="alloc-nope")),
        (env.stub.RenewLease, resources_pb2.RenewLeaseRequest(allocation_id="alloc-nope")),
        (env.stub.GetJob, resources_pb2.GetJobRequest(job_id="job-nope")),
        (env.stub.CancelJob, resources_pb2.CancelJobRequest(job_id="job-nope")),
    ]:
        assert code_of(call, message)[0] == grpc.StatusCode.NOT_FOUND


def test_flags_and_a_broken_config(tmp_path: Path) -> None:
    config, options = parse_args(["--port", "0", "--metrics-port", "off", "--no-jax"])
    assert config.port == 0 and config.metrics_port is None and not options.use_jax
    with pytest.raises(SystemExit) as err:
        parse_args(["--storage-path", "/nonexistent/dir"])
    assert err.value.code == 2
    broken = tmp_path / "rates.json"
    broken.write_text('{"rates": {"usd_per_gpu_hour": -2}}')
    with pytest.raises(ValueError, match="usd_per_gpu_hour"):
        build_server(config, Options(config=broken), probe=host)


def test_reaper_returns_a_dead_holders_share_without_calls(core: ResourcesCore) -> None:
    clock = FakeClock(START)
    config = ServerConfig(port=0, metrics_port=0)
    options = Options(reap_interval_seconds=0.02)
    with build_server(config, options, core=core, probe=host, clock=clock) as server:
        channel = grpc.insecure_channel(server.target)
        stub = resources_pb2_grpc.ResourcesServiceStub(channel)
        env = Env(stub, clock, f"http://127.0.0.1:{server.metrics_port}/metrics")
        stub.Allocate(req(cpu=6, lease_seconds=5), timeout=10)
        channel.close()  # from here on no call arrives: only the reaper can return the share
        assert metric(env, 'layer8_allocated{resource="cpu_cores"}') == 6
        clock.advance(5)
        cpu = 'layer8_allocated{resource="cpu_cores"}'
        wait_until(lambda: metric(env, cpu) == 0, timeout=5, what="the reaper returning the share")
        assert metric(env, 'layer8_lease_expiries_total{cause="heartbeat"}') == 1


def test_cli_bad_config_is_exit_2_with_one_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "rates.json"
    broken.write_text('{"rates": {"usd_per_cpu_core_hour": "cheap"}}')
    assert main(["--port", "0", "--metrics-port", "off", "--no-jax", "--config", str(broken)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "rates.usd_per_cpu_core_hour must be a number" in err


def test_client_asks_before_a_run_and_waits_for_the_grant(core: ResourcesCore) -> None:
    config = ServerConfig(port=0, metrics_port=None)
    with build_server(config, NO_REAPER, core=core, probe=host) as server:
        with ResourcesClient(server.target, poll_seconds=0.01) as resources:
            first = resources.request_run("evolve a", cpu_cores=6, minutes=5, population_size=99)
            assert first.status == resources_pb2.JOB_STATUS_RUNNING
            assert first.grant.max_population == 99 and first.grant.wall_time_seconds == 300
            second = resources.request_run("evolve b", cpu_cores=4, minutes=5, wait_seconds=0.05)
            assert second.status == resources_pb2.JOB_STATUS_QUEUED  # 2 cores free, waits
            assert resources.finish(first.id).status == resources_pb2.JOB_STATUS_FINISHED
            granted = resources.job(second.id)
            assert granted.status == resources_pb2.JOB_STATUS_RUNNING
            assert granted.grant.max_population == 4 * 256
            assert resources.inventory().available.cpu_cores == 4


def test_refresh_probes_the_host_again(core: ResourcesCore) -> None:
    probes = [host(), dataclasses.replace(host(), cpu_cores=4.0, accelerator_probe="second")]
    calls: list[int] = []

    def probe() -> HostInventory:
        calls.append(1)
        return probes[min(len(calls), 2) - 1]

    config = ServerConfig(port=0, metrics_port=None)
    with build_server(config, NO_REAPER, core=core, probe=probe) as server:
        with grpc.insecure_channel(server.target) as channel:
            stub = resources_pb2_grpc.ResourcesServiceStub(channel)
            held = stub.Allocate(req(cpu=3), timeout=10)
            cached = stub.GetInventory(resources_pb2.GetInventoryRequest(), timeout=10)
            assert cached.capacity.cpu_cores == 8 and len(calls) == 1
            fresh = stub.GetInventory(resources_pb2.GetInventoryRequest(refresh=True), timeout=10)
            assert fresh.accelerator_probe == "second" and len(calls) == 2
            assert fresh.capacity.cpu_cores == 4 and fresh.available.cpu_cores == 1
            assert fresh.active_allocations == 1
            code, text = code_of(stub.Allocate, req(cpu=2))
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "only 1 cores free" in text
            stub.Release(resources_pb2.ReleaseRequest(allocation_id=held.id), timeout=10)


def test_a_restart_on_the_state_dir_keeps_allocations_and_jobs(
    core: ResourcesCore, tmp_path: Path
) -> None:
    """--state-dir: a server started on the ledger of one that died holds the same
    grants (a running job is still cancellable), queued jobs keep their place, and
    what ran out while it was down expires on its first check."""
    clock = FakeClock()
    config = ServerConfig(port=0, metrics_port=None)
    options = Options(state_dir=tmp_path / "state")

    with build_server(config, options, core=core, probe=host, clock=clock) as server:
        with grpc.insecure_channel(server.target) as channel:
            stub = resources_pb2_grpc.ResourcesServiceStub(channel)
            running = stub.ScheduleJob(resources_pb2.ScheduleJobRequest(
                name="evolve", request=req(cpu=6, minutes=30), population_size=64), timeout=10)
            queued = stub.ScheduleJob(resources_pb2.ScheduleJobRequest(
                name="waits", request=req(cpu=4, minutes=30)), timeout=10)
            short = stub.Allocate(req(cpu=1, minutes=1), timeout=10)
            before = stub.ListAllocations(resources_pb2.ListAllocationsRequest(), timeout=10)
    assert running.status == resources_pb2.JOB_STATUS_RUNNING
    assert queued.status == resources_pb2.JOB_STATUS_QUEUED

    clock.advance(90)  # the 1-minute allocation runs out while no server is up
    with build_server(config, options, core=core, probe=host, clock=clock) as server:
        with grpc.insecure_channel(server.target) as channel:
            stub = resources_pb2_grpc.ResourcesServiceStub(channel)
            job = stub.GetJob(resources_pb2.GetJobRequest(job_id=running.id), timeout=10)
            assert job.status == resources_pb2.JOB_STATUS_RUNNING
            assert job.allocation.id == running.allocation.id and job.grant == running.grant
            assert stub.GetJob(resources_pb2.GetJobRequest(job_id=queued.id), timeout=10).status == (
                resources_pb2.JOB_STATUS_QUEUED)
            after = stub.ListAllocations(resources_pb2.ListAllocationsRequest(), timeout=10)
            assert {a.id for a in after.allocations} == {a.id for a in before.allocations}
            ended = next(a for a in after.allocations if a.id == short.id)
            assert ended.status == resources_pb2.ALLOCATION_STATUS_EXPIRED
            # The holder of the running job releases it through the new server ...
            done = stub.CancelJob(resources_pb2.CancelJobRequest(job_id=running.id), timeout=10)
            assert done.status == resources_pb2.JOB_STATUS_FINISHED
            # ... and the queued one starts on the share it returned.
            assert stub.GetJob(resources_pb2.GetJobRequest(job_id=queued.id), timeout=10).status == (
                resources_pb2.JOB_STATUS_RUNNING)

    (tmp_path / "state" / "ledger.json").write_text("{not json")
    with pytest.raises(ValueError, match="ledger.json: not a valid state record"):
        build_server(config, options, core=core, probe=host, clock=clock)
