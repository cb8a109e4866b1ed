"""Layer 7 asks layer 8 before a run: BeginRun against layer 8's own server (a
subprocess on loopback, 6 members per granted core), the grant clipping the
population, refusals, the wall time running out, EndRun releasing the share."""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from chimera.framework.processes import ProcessStack, ServerSpec, free_ports, runfile
from chimera.genetics.main import Options, build_server
from chimera.v1 import common_pb2, genetics_pb2, resources_pb2, resources_pb2_grpc
from service_support import LOOPBACK, Stub, advance, start

#: Layer 8's grant limit in this test: population_per_core x granted cores.
PER_CORE = 6


@dataclass(frozen=True)
class Stack:
    genetics: Stub
    resources: resources_pb2_grpc.ResourcesServiceStub
    options: Options  # the layer-7 server's (its run directory, layer 8's address)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """Layer 8's server (subprocess) and a layer-7 server with --resources-target on it."""
    port, metrics = free_ports(2)
    with tempfile.TemporaryDirectory() as run_dir, ProcessStack(Path(run_dir)) as processes:
        config = Path(run_dir) / "resources.json"
        config.write_text(
            json.dumps(
                {
                    "rates": {"usd_per_cpu_core_hour": 0.04, "usd_per_memory_gib_hour": 0.005},
                    "grants": {"population_per_core": PER_CORE, "population_per_gpu": 0},
                }
            )
        )
        layer8 = ServerSpec(
            "layer8",
            (
                str(runfile("layers/layer8_resources/server")), "--port", str(port),
                "--metrics-port", str(metrics), "--no-jax", "--config", str(config),
                "--storage-path", run_dir,
            ),
            port,
            "chimera.v1.ResourcesService",
            metrics,
        )
        processes.start([layer8])
        options = Options(run_dir=Path(run_dir) / "genetics", resources_target=layer8.target)
        with build_server(LOOPBACK, options) as server, grpc.insecure_channel(
            server.target
        ) as channel, grpc.insecure_channel(layer8.target) as resources:
            yield Stack(Stub(channel), resources_pb2_grpc.ResourcesServiceStub(resources), options)


def needs(cores: float = 1.0, seconds: int = 60, **kw: object) -> genetics_pb2.RunResources:
    return genetics_pb2.RunResources(
        requirements=common_pb2.ResourceRequirements(cpu_cores=cores), wall_time_seconds=seconds, **kw
    )


def begin(stack: Stack, agent: str, resources: genetics_pb2.RunResources) -> genetics_pb2.RunGrantStatus:
    return stack.genetics.BeginRun(
        genetics_pb2.BeginRunRequest(agent_id=agent, resources=resources), timeout=30
    )


def refused(call: object, request: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call(request, timeout=30)  # type: ignore[operator]
    return err.value


def job_status(stack: Stack, job_id: str) -> str:
    job = stack.resources.GetJob(resources_pb2.GetJobRequest(job_id=job_id), timeout=10)
    return resources_pb2.JobStatus.Name(job.status)


def test_the_grant_clips_each_generation_and_end_run_releases_it(stack: Stack) -> None:
    status = begin(stack, "clip", needs(population_size=8))
    assert status.max_population == PER_CORE and status.wall_time_seconds == 60
    assert not status.released and 0 < status.seconds_left <= 60
    assert job_status(stack, status.job.id) == "JOB_STATUS_RUNNING"
    assert status.job.grant.max_population == PER_CORE and status.job.grant.cpu_cores == 1

    first = start(stack.genetics, "clip", population_size=8, seed=1)
    assert len(first.population) == PER_CORE and first.population_clipped_from == 8
    assert first.grant.job.id == status.job.id and first.grant.max_population == PER_CORE
    second = advance(stack.genetics, "clip", list(first.population), seed=1)
    assert len(second.population) == PER_CORE and second.population_clipped_from == 8

    ended = stack.genetics.EndRun(genetics_pb2.EndRunRequest(agent_id="clip"), timeout=30)
    assert ended.released and ended.seconds_left == 0
    assert ended.job.status == resources_pb2.JOB_STATUS_FINISHED
    assert job_status(stack, status.job.id) == "JOB_STATUS_FINISHED"
    # No grant, no generation: the service asks before every run.
    err = refused(
        stack.genetics.RunGeneration,
        genetics_pb2.RunGenerationRequest(agent_id="clip", evaluations=[]),
    )
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "BeginRun" in err.details()
    assert refused(stack.genetics.EndRun, genetics_pb2.EndRunRequest(agent_id="clip")).code() == (
        grpc.StatusCode.NOT_FOUND
    )


def test_a_population_within_the_grant_is_not_clipped(stack: Stack) -> None:
    begin(stack, "fits", needs(cores=2.0))  # 12 members allowed
    first = start(stack.genetics, "fits", population_size=PER_CORE)
    assert len(first.population) == PER_CORE and first.population_clipped_from == 0
    stack.genetics.EndRun(genetics_pb2.EndRunRequest(agent_id="fits"), timeout=30)


@pytest.mark.parametrize(
    ("resources", "reason"),
    [
        (needs(cores=4096.0), "requirements.cpu_cores"),  # more than the whole pool
        (needs(budget_usd=1e-9), "budget_usd"),
    ],
)
def test_a_refused_job_is_resource_exhausted_with_layer_8s_reason(
    stack: Stack, resources: genetics_pb2.RunResources, reason: str
) -> None:
    err = refused(stack.genetics.BeginRun, genetics_pb2.BeginRunRequest(agent_id="big", resources=resources))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err.details()
    assert "JOB_STATUS_REJECTED" in err.details() and reason in err.details()


def test_a_run_past_its_wall_time_is_refused_and_its_grant_released(stack: Stack) -> None:
    status = begin(stack, "late", needs(seconds=1))
    assert status.wall_time_seconds == 1  # asked 1 s; layer 8 granted a whole minute
    first = start(stack.genetics, "late", population_size=PER_CORE)
    time.sleep(1.2)
    err = refused(
        stack.genetics.RunGeneration,
        genetics_pb2.RunGenerationRequest(
            agent_id="late",
            evaluations=[genetics_pb2.GenomeEvaluation(genome_id=g.id, fitness=1.0) for g in first.population],
        ),
    )
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "wall time of 1 s" in err.details()
    assert job_status(stack, status.job.id) == "JOB_STATUS_FINISHED"
    # The refused generation stored nothing; a new grant continues the run.
    again = begin(stack, "late", needs())
    assert again.job.id != status.job.id
    assert advance(stack.genetics, "late", list(first.population)).generation == 1
    stack.genetics.EndRun(genetics_pb2.EndRunRequest(agent_id="late"), timeout=30)


def test_one_grant_per_agent_at_a_time(stack: Stack) -> None:
    begin(stack, "twice", needs())
    err = refused(stack.genetics.BeginRun, genetics_pb2.BeginRunRequest(agent_id="twice", resources=needs()))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "EndRun first" in err.details()
    stack.genetics.EndRun(genetics_pb2.EndRunRequest(agent_id="twice"), timeout=30)


def _begin(**kw: object) -> genetics_pb2.BeginRunRequest:
    kw.setdefault("agent_id", "bad")
    kw.setdefault("resources", needs())
    return genetics_pb2.BeginRunRequest(**kw)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (_begin(agent_id=""), "agent_id"),
        (genetics_pb2.BeginRunRequest(agent_id="bad"), "resources"),
        (_begin(wait_seconds=601), "wait_seconds"),
        (_begin(resources=genetics_pb2.RunResources(wall_time_seconds=60)), "resources.requirements"),
        (_begin(resources=needs(cores=0.0)), "resources.requirements"),
        (_begin(resources=needs(seconds=0)), "resources.wall_time_seconds"),
        (_begin(resources=needs(seconds=604801)), "resources.wall_time_seconds"),
        (_begin(resources=needs(priority=99)), "resources.priority"),
        (_begin(resources=needs(budget_usd=-1.0)), "resources.budget_usd"),
        (_begin(resources=needs(budget_usd=float("nan"))), "resources.budget_usd"),
        (_begin(resources=needs(population_size=100_001)), "resources.population_size"),
        (_begin(resources=needs(cores=float("inf"))), "resources.requirements.cpu_cores"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_bad_begin_run_names_the_field(stack: Stack, request_: genetics_pb2.BeginRunRequest, field: str) -> None:
    err = refused(stack.genetics.BeginRun, request_)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and f"'{field}'" in err.details(), err.details()


def test_bad_end_run_and_no_resources_target(stack: Stack, tmp_path: Path) -> None:
    err = refused(stack.genetics.EndRun, genetics_pb2.EndRunRequest())
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "'agent_id'" in err.details()
    # Without --resources-target there is nobody to ask: BeginRun is refused, runs go as before.
    with build_server(LOOPBACK, Options(run_dir=tmp_path)) as server, grpc.insecure_channel(server.target) as channel:
        err = refused(Stub(channel).BeginRun, _begin())
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "--resources-target" in err.details()
        assert not start(Stub(channel), "free", population_size=PER_CORE).HasField("grant")


def test_a_restarted_service_holds_the_grant_of_the_one_before(stack: Stack, tmp_path: Path) -> None:
    """The grant is recorded in the genome store: a service started on the same store
    breeds the next generation under the same layer-8 job and EndRun releases it."""
    options = dataclasses.replace(stack.options, run_dir=tmp_path / "genetics")
    with build_server(LOOPBACK, options) as server, grpc.insecure_channel(server.target) as channel:
        status = Stub(channel).BeginRun(
            genetics_pb2.BeginRunRequest(agent_id="restarted", resources=needs(population_size=8)),
            timeout=30,
        )
        first = start(Stub(channel), "restarted", population_size=8, seed=2)
    # The first server is gone without EndRun (as after a SIGKILL); the job still runs.
    assert job_status(stack, status.job.id) == "JOB_STATUS_RUNNING"
    with build_server(LOOPBACK, options) as server, grpc.insecure_channel(server.target) as channel:
        genetics = Stub(channel)
        second = advance(genetics, "restarted", list(first.population), seed=2)
        assert second.generation == 1 and len(second.population) == PER_CORE
        assert second.grant.job.id == status.job.id and not second.grant.released
        assert 0 < second.grant.seconds_left <= status.seconds_left
        ended = genetics.EndRun(genetics_pb2.EndRunRequest(agent_id="restarted"), timeout=30)
        assert ended.released and job_status(stack, status.job.id) == "JOB_STATUS_FINISHED"
    # Released grants are no longer recorded: a third start holds none.
    with build_server(LOOPBACK, options) as server, grpc.insecure_channel(server.target) as channel:
        err = refused(Stub(channel).EndRun, genetics_pb2.EndRunRequest(agent_id="restarted"))
        assert err.code() == grpc.StatusCode.NOT_FOUND
