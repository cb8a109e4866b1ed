"""Load through the real server: 1,000 prioritized tasks, complete KPI streams, slow readers."""

from __future__ import annotations

import dataclasses
import random
import time

import grpc

import guests
from chimera.execution.abi import GuestResult, encode_result
from chimera.execution.service import SERVICE_NAME
from chimera.v1 import common_pb2, execution_pb2
from service_support import FAST_OPTIONS, Harness, collect_kpis, running, wait_streams

PRIORITIES = (
    common_pb2.PRIORITY_BACKGROUND,
    common_pb2.PRIORITY_LOW,
    common_pb2.PRIORITY_NORMAL,
    common_pb2.PRIORITY_HIGH,
    common_pb2.PRIORITY_CRITICAL,
)
SPIN = execution_pb2.ExecutionLimits(fuel=10**12, timeout_ms=60_000)


def wait_running(h: Harness, task_ids: list[str], timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    for task_id in task_ids:
        while (
            h.stub.GetTask(execution_pb2.GetTaskRequest(task_id=task_id)).status
            != common_pb2.TASK_STATUS_RUNNING
        ):
            assert time.monotonic() < end, f"{task_id} never started"
            time.sleep(0.002)


def test_thousand_tasks_run_in_priority_order_within_the_concurrency_limit() -> None:
    n = 1000
    rng = random.Random(4)
    with running(dataclasses.replace(FAST_OPTIONS, concurrency=2)) as h:
        h.deploy("ok", guests.OK_GUEST)
        h.deploy("loop", guests.INFINITE_LOOP)
        with collect_kpis(h.stub, execution_pb2.StreamKpisRequest(module_name="ok")) as kpis:
            wait_streams(h, 1)
            # Two blockers hold both workers while the queue fills, so the
            # order of execution is decided by the queue alone.
            blockers = [h.submit("loop", limits=SPIN).task_id for _ in range(2)]
            wait_running(h, blockers)
            submitted: list[tuple[str, int]] = []
            for i in range(n):
                prio = PRIORITIES[rng.randrange(5)]
                handle = h.submit("ok", task_id=f"t{i:04d}", priority=prio)
                assert handle.status == common_pb2.TASK_STATUS_QUEUED
                submitted.append((handle.task_id, prio))
            assert handle.queue_depth == n
            for b in blockers:
                h.stub.CancelTask(execution_pb2.CancelTaskRequest(task_id=b))
            reports = kpis.wait_for(lambda r: len(r) >= n, timeout=60)
        assert kpis.error is None
        by_task = kpis.by_task()
        assert sorted(by_task) == sorted(t for t, _ in submitted)  # none lost, none extra
        assert all(
            len(v) == 1 and v[0].status == common_pb2.RUN_OUTCOME_SUCCESS for v in by_task.values()
        )
        assert len(reports) == n

        records = {t: h.wait_terminal(t) for t, _ in submitted}
        assert all(
            r.status == common_pb2.TASK_STATUS_SUCCEEDED and r.attempts == 1
            for r in records.values()
        )
        order = sorted(submitted, key=lambda tp: records[tp[0]].started_at.ToNanoseconds())
        # Strictly by priority, and FIFO (submission order) within a priority.
        expected = sorted(submitted, key=lambda tp: (-tp[1], tp[0]))
        assert [t for t, _ in order] == [t for t, _ in expected]
        # Never more than `concurrency` tasks in a sandbox at once.
        events = []
        for r in records.values():
            events.append((r.started_at.ToNanoseconds(), 1))
            events.append((r.finished_at.ToNanoseconds(), -1))
        running_now = peak = 0
        for _, delta in sorted(events, key=lambda e: (e[0], e[1])):
            running_now += delta
            peak = max(peak, running_now)
        assert 1 <= peak <= 2
        assert h.server.servicer(SERVICE_NAME).scheduler.max_running <= 2
        assert h.metric("layer4_tasks_total", status="succeeded") == n
        assert h.metric("layer4_kpi_drops_total") == 0


# ~15 KB per KPI report: a stream that is not read fills gRPC's flow-control
# window after a few hundred reports, after which its handler blocks in send.
BIG_METRICS = guests.abi_guest(
    result=encode_result(
        GuestResult((1.0,), {f"m{i:02d}_" + "x" * 240: float(i) for i in range(60)})
    )
)


def test_slow_subscriber_never_blocks_execution_and_drops_are_counted() -> None:
    n = 800
    options = dataclasses.replace(FAST_OPTIONS, kpi_buffer=256)
    with running(options) as h:
        h.deploy("big", BIG_METRICS)
        slow = h.stub.StreamKpis(execution_pb2.StreamKpisRequest())  # never read
        try:
            with collect_kpis(h.stub) as fast:
                wait_streams(h, 2)
                t0 = time.monotonic()
                ids = [h.submit("big").task_id for _ in range(n)]
                fast.wait_for(lambda r: len(r) >= n, timeout=60)
                records = [h.wait_terminal(t) for t in ids]
                elapsed = time.monotonic() - t0
                assert all(r.status == common_pb2.TASK_STATUS_SUCCEEDED for r in records)
                # The stalled stream lost reports (counted live, while it is
                # still open); the fast one lost none.
                drops = h.metric("layer4_kpi_drops_total")
                assert drops > 0
                assert sorted(r.task_id for r in fast.reports) == sorted(ids)
                assert elapsed < 40
        finally:
            slow.cancel()
        end = time.monotonic() + 5
        while h.metric("layer4_kpi_streams") > 0:
            assert time.monotonic() < end, "streams did not close"
            time.sleep(0.01)
        assert h.server.servicer(SERVICE_NAME).hub.subscriber_count() == 0


def test_stream_filters_and_backlog_since() -> None:
    with running() as h:
        h.deploy("a", guests.marker_guest(1.0))
        h.deploy("b", guests.marker_guest(2.0))
        start = time.time()
        early = h.wait_terminal(h.submit("a", agent_id="early").task_id)
        since = execution_pb2.StreamKpisRequest(module_name="a")
        since.since.FromNanoseconds(int(start * 1e9))
        with (
            collect_kpis(h.stub, since) as backlog,
            collect_kpis(h.stub, execution_pb2.StreamKpisRequest(agent_id="x")) as agent_x,
            collect_kpis(h.stub, execution_pb2.StreamKpisRequest(module_name="b")) as only_b,
        ):
            wait_streams(h, 3)
            ids = [
                h.submit("a", agent_id="x").task_id,
                h.submit("b", agent_id="y").task_id,
                h.submit("b", agent_id="x").task_id,
            ]
            for t in ids:
                h.wait_terminal(t)
            got_backlog = backlog.wait_for(lambda r: len(r) >= 2)
            got_x = agent_x.wait_for(lambda r: len(r) >= 2)
            got_b = only_b.wait_for(lambda r: len(r) >= 2)
            time.sleep(0.1)  # nothing else may arrive
        assert [r.task_id for r in backlog.reports] == [early.spec.task_id, ids[0]]
        # (two workers: tasks submitted together may finish in either order)
        assert sorted(r.task_id for r in agent_x.reports) == sorted([ids[0], ids[2]])
        assert sorted(r.task_id for r in only_b.reports) == sorted([ids[1], ids[2]])
        assert got_backlog[0].metrics["marker"] == 1.0
        assert all(r.metrics["marker"] == 2.0 for r in got_b)
        assert all(r.recorded_at.ToNanoseconds() > 0 for r in got_x)


def test_kpi_streams_are_capped() -> None:
    with running(dataclasses.replace(FAST_OPTIONS, max_kpi_streams=1)) as h:
        with collect_kpis(h.stub):
            wait_streams(h, 1)
            second = h.stub.StreamKpis(execution_pb2.StreamKpisRequest())
            try:
                next(iter(second))
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
            else:
                raise AssertionError("a second stream must be refused")
        end = time.monotonic() + 5
        while h.metric("layer4_kpi_streams") > 0:  # the first one closed: room again
            assert time.monotonic() < end
            time.sleep(0.01)
        with collect_kpis(h.stub):
            wait_streams(h, 1)


def test_every_finished_task_publishes_exactly_one_kpi() -> None:
    """One report per finished attempt; a task cancelled before it ran has none."""
    with running(dataclasses.replace(FAST_OPTIONS, concurrency=1)) as h:
        h.deploy("m4", guests.marker_guest(4.0))
        h.deploy("loop", guests.INFINITE_LOOP)
        with collect_kpis(h.stub, execution_pb2.StreamKpisRequest(module_name="m4")) as kpis:
            wait_streams(h, 1)
            blocker = h.submit("loop", limits=SPIN).task_id  # holds the one worker
            wait_running(h, [blocker])
            ids = [h.submit("m4", task_id=f"k{i}", agent_id="agent-7").task_id for i in range(50)]
            k7 = h.stub.CancelTask(execution_pb2.CancelTaskRequest(task_id="k7"))
            assert k7.status == common_pb2.TASK_STATUS_CANCELLED and k7.attempts == 0
            h.stub.CancelTask(execution_pb2.CancelTaskRequest(task_id=blocker))
            kpis.wait_for(lambda r: len(r) >= 49)
            records = {t: h.wait_terminal(t) for t in ids}
            time.sleep(0.05)  # room for an extra report to arrive, if one were sent
    assert kpis.error is None
    assert len(kpis.reports) == 49  # nothing extra
    per_task = kpis.by_task()
    assert sorted(per_task) == sorted(t for t in ids if t != "k7")
    assert all(len(v) == 1 for v in per_task.values())
    by_task = {t: v[0] for t, v in per_task.items()}
    assert records["k7"].status == common_pb2.TASK_STATUS_CANCELLED
    assert not records["k7"].HasField("last_kpi")
    assert all(records[t].status == common_pb2.TASK_STATUS_SUCCEEDED for t in by_task)
    assert all(
        r.status == common_pb2.RUN_OUTCOME_SUCCESS and r.metrics["marker"] == 4.0
        for r in by_task.values()
    )
    assert all(r.module_version == 1 and r.fuel_consumed > 0 for r in by_task.values())
    assert all(
        r.memory_peak_bytes == 65536 and r.agent_id == "agent-7" and r.module_name == "m4"
        for r in by_task.values()
    )


def test_resubmitting_a_task_id_returns_the_existing_task() -> None:
    with running() as h:
        h.deploy("ok", guests.OK_GUEST)
        first = h.submit("ok", task_id="same", labels={"k": "v"})
        done = h.wait_terminal("same")
        again = h.submit("ok", task_id="same", priority=common_pb2.PRIORITY_CRITICAL)
        assert again.task_id == "same" and again.enqueued_at == first.enqueued_at
        assert again.status == common_pb2.TASK_STATUS_SUCCEEDED
        assert h.wait_terminal("same").attempts == done.attempts == 1
        assert dict(done.spec.labels) == {"k": "v"}
        auto = h.submit("ok")
        assert (
            len(auto.task_id) == 32 and h.wait_terminal(auto.task_id).spec.task_id == auto.task_id
        )
        try:
            h.stub.GetTask(execution_pb2.GetTaskRequest(task_id="missing"))
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
        else:
            raise AssertionError("GetTask of an unknown id must fail")
