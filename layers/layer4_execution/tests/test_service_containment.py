"""Containment through the real server: runaway guests are stopped and the service keeps serving."""

from __future__ import annotations

import dataclasses
import time

import grpc
import pytest

import guests
from chimera.v1 import common_pb2, execution_pb2
from service_support import FAST_OPTIONS, Harness, collect_kpis, running, wait_streams

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def h() -> Harness:
    with running() as harness:
        harness.deploy("ok", guests.OK_GUEST)
        harness.deploy("loop", guests.INFINITE_LOOP)
        harness.deploy("bomb", guests.MEMORY_BOMB_TRAP)
        harness.deploy("bomb-spin", guests.MEMORY_BOMB_SPIN)
        harness.deploy("trap", guests.UNREACHABLE)
        harness.deploy("refuses", guests.GUEST_FAILS)
        harness.deploy("bad-record", guests.BAD_RESULT)
        harness.deploy("stack", guests.STACK_OVERFLOW)
        yield harness  # type: ignore[misc]


def still_serving(h: Harness) -> None:
    rec = h.wait_terminal(h.submit("ok").task_id)
    assert rec.status == common_pb2.TASK_STATUS_SUCCEEDED
    assert rec.last_outcome == common_pb2.RUN_OUTCOME_SUCCESS


def test_infinite_loop_is_stopped_by_fuel(h: Harness) -> None:
    with collect_kpis(h.stub, execution_pb2.StreamKpisRequest(module_name="loop")) as kpis:
        wait_streams(h, 1)
        spec = execution_pb2.ExecutionLimits(fuel=5_000_000, timeout_ms=60_000)
        rec = h.wait_terminal(h.submit("loop", limits=spec).task_id)
        (kpi,) = kpis.wait_for(lambda r: len(r) >= 1)
    assert rec.status == common_pb2.TASK_STATUS_DEAD_LETTERED
    assert rec.last_outcome == common_pb2.RUN_OUTCOME_OUT_OF_FUEL
    assert rec.attempts == 1  # deterministic: not retried
    assert "FUEL_EXHAUSTED" in rec.last_error
    assert kpi.status == common_pb2.RUN_OUTCOME_OUT_OF_FUEL and kpi.task_id == rec.spec.task_id
    assert kpi.fuel_consumed == 5_000_000
    dead = h.stub.ListDeadLetters(execution_pb2.ListDeadLettersRequest())
    assert rec.spec.task_id in [t.spec.task_id for t in dead.tasks]
    still_serving(h)


def test_infinite_loop_is_stopped_by_the_epoch_deadline(h: Harness) -> None:
    limits = execution_pb2.ExecutionLimits(fuel=10**12, timeout_ms=150)
    t0 = time.monotonic()
    rec = h.wait_terminal(h.submit("loop", limits=limits, max_retries=0).task_id)
    assert time.monotonic() - t0 < 3.0
    assert rec.status == common_pb2.TASK_STATUS_DEAD_LETTERED
    assert rec.last_outcome == common_pb2.RUN_OUTCOME_DEADLINE_EXCEEDED
    assert rec.last_kpi.status == common_pb2.RUN_OUTCOME_DEADLINE_EXCEEDED
    assert 140 <= rec.last_kpi.latency_ms < 2_000
    assert rec.last_kpi.fuel_consumed > 0
    still_serving(h)


def test_deadline_is_retried_with_backoff_then_dead_lettered(h: Harness) -> None:
    limits = execution_pb2.ExecutionLimits(fuel=10**12, timeout_ms=40)
    with collect_kpis(h.stub, execution_pb2.StreamKpisRequest(module_name="loop")) as kpis:
        wait_streams(h, 1)
        handle = h.submit("loop", limits=limits, max_retries=2)
        saw_retry_wait = False
        end = time.monotonic() + 10
        while True:
            rec = h.stub.GetTask(execution_pb2.GetTaskRequest(task_id=handle.task_id))
            if rec.status == common_pb2.TASK_STATUS_RETRY_WAIT:
                saw_retry_wait = True
                assert rec.next_attempt_at.ToNanoseconds() > 0 and rec.attempts >= 1
            if rec.status == common_pb2.TASK_STATUS_DEAD_LETTERED or time.monotonic() > end:
                break
            time.sleep(0.005)
        reports = kpis.wait_for(lambda r: len(r) >= 3)
    assert rec.status == common_pb2.TASK_STATUS_DEAD_LETTERED and rec.attempts == 3
    assert "gave up after 3 attempts" in rec.last_error
    assert saw_retry_wait
    assert [r.metrics["attempt"] for r in reports] == [1.0, 2.0, 3.0]
    assert all(r.status == common_pb2.RUN_OUTCOME_DEADLINE_EXCEEDED for r in reports)
    dead = h.stub.ListDeadLetters(execution_pb2.ListDeadLettersRequest(limit=1))
    assert [t.spec.task_id for t in dead.tasks] == [handle.task_id]  # most recent first


@pytest.mark.parametrize("module", ["bomb", "bomb-spin"])
def test_memory_bomb_is_stopped_at_the_limit(h: Harness, module: str) -> None:
    limits = execution_pb2.ExecutionLimits(memory_bytes=MIB, fuel=50_000_000)
    rec = h.wait_terminal(h.submit(module, limits=limits).task_id)
    assert rec.status == common_pb2.TASK_STATUS_DEAD_LETTERED
    assert rec.last_outcome == common_pb2.RUN_OUTCOME_MEMORY_LIMIT, rec.last_error
    assert 0 < rec.last_kpi.memory_peak_bytes <= MIB
    still_serving(h)


def test_trapping_guest_fails_alone_while_others_succeed(h: Harness) -> None:
    handles = [h.submit("trap" if i % 3 == 0 else "ok") for i in range(30)]
    records = [h.wait_terminal(x.task_id) for x in handles]
    for i, rec in enumerate(records):
        if i % 3 == 0:
            assert rec.status == common_pb2.TASK_STATUS_DEAD_LETTERED
            assert rec.last_outcome == common_pb2.RUN_OUTCOME_TRAP
            assert "UNREACHABLE" in rec.last_error.upper()
            assert rec.output == b""
        else:
            assert rec.status == common_pb2.TASK_STATUS_SUCCEEDED
            assert rec.output.startswith(b"CHR1") and rec.last_kpi.metrics["marker"] == 1.0


@pytest.mark.parametrize(
    "module, outcome, words",
    [
        ("refuses", common_pb2.RUN_OUTCOME_TRAP, "INVALID_INPUT"),
        ("bad-record", common_pb2.RUN_OUTCOME_HOST_ERROR, "bad result record"),
        ("stack", common_pb2.RUN_OUTCOME_TRAP, "STACK_OVERFLOW"),
    ],
)
def test_guest_failures_map_to_run_outcomes(
    h: Harness, module: str, outcome: int, words: str
) -> None:
    rec = h.wait_terminal(h.submit(module).task_id)
    assert rec.status == common_pb2.TASK_STATUS_DEAD_LETTERED
    assert rec.last_outcome == outcome and words in rec.last_error, rec.last_error
    still_serving(h)


def test_forbidden_import_is_rejected_at_deploy(h: Harness) -> None:
    with pytest.raises(grpc.RpcError) as exc:
        h.deploy("evil", guests.FORBIDDEN_IMPORT)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "env.host_fn" in exc.value.details()  # type: ignore[attr-defined]
    still_serving(h)


def test_cancel_running_and_queued_tasks() -> None:
    with running(dataclasses.replace(FAST_OPTIONS, concurrency=1)) as h:
        h.deploy("loop", guests.INFINITE_LOOP)
        h.deploy("ok", guests.OK_GUEST)
        limits = execution_pb2.ExecutionLimits(fuel=10**12, timeout_ms=60_000)
        spinning = h.submit("loop", limits=limits)
        queued = h.submit("ok")
        end = time.monotonic() + 5
        while (
            h.stub.GetTask(execution_pb2.GetTaskRequest(task_id=spinning.task_id)).status
            != common_pb2.TASK_STATUS_RUNNING
        ):
            assert time.monotonic() < end
        rec = h.stub.CancelTask(execution_pb2.CancelTaskRequest(task_id=queued.task_id))
        assert rec.status == common_pb2.TASK_STATUS_CANCELLED and rec.attempts == 0
        t0 = time.monotonic()
        rec = h.stub.CancelTask(execution_pb2.CancelTaskRequest(task_id=spinning.task_id))
        rec = h.wait_terminal(spinning.task_id)
        assert time.monotonic() - t0 < 2.0
        assert rec.status == common_pb2.TASK_STATUS_CANCELLED
        assert rec.last_kpi.metrics["cancelled"] == 1.0
        again = h.stub.CancelTask(execution_pb2.CancelTaskRequest(task_id=spinning.task_id))
        assert again.status == common_pb2.TASK_STATUS_CANCELLED  # finished: unchanged
        assert h.metric("layer4_tasks_total", status="cancelled") == 2
        still_serving(h)


def test_full_queue_is_resource_exhausted() -> None:
    options = dataclasses.replace(FAST_OPTIONS, concurrency=1, max_queue=3)
    with running(options) as h:
        h.deploy("loop", guests.INFINITE_LOOP)
        h.deploy("ok", guests.OK_GUEST)
        blocker = h.submit(
            "loop", limits=execution_pb2.ExecutionLimits(fuel=10**12, timeout_ms=60_000)
        )
        end = time.monotonic() + 5
        while (
            h.stub.GetTask(execution_pb2.GetTaskRequest(task_id=blocker.task_id)).status
            != common_pb2.TASK_STATUS_RUNNING
        ):
            assert time.monotonic() < end
        depths = [h.submit("ok").queue_depth for _ in range(3)]
        assert depths == [1, 2, 3] and h.metric("layer4_queue_depth") == 3
        with pytest.raises(grpc.RpcError) as exc:
            h.submit("ok")
        assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
        h.stub.CancelTask(execution_pb2.CancelTaskRequest(task_id=blocker.task_id))
        still_serving(h)


def test_metrics_count_outcomes(h: Harness) -> None:
    text = h.server.metrics.render()
    for name in (
        "layer4_tasks_total",
        "layer4_attempts_total",
        "layer4_task_latency_seconds_bucket",
        "layer4_attempt_run_seconds_bucket",
        "layer4_queue_depth",
        "layer4_active_modules",
        "layer4_kpi_drops_total",
    ):
        assert name in text, name
    assert h.metric("layer4_attempts_total", outcome="success") >= 1
    assert h.metric("layer4_tasks_total", status="succeeded") >= 1
    assert h.metric("layer4_active_modules") == 8
