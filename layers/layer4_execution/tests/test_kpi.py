"""KPI hub: bounded per-subscriber queues, drop counting, unsubscribe, end-to-end records."""

from __future__ import annotations

import threading
import time

import guests
from chimera.execution.kpi import KpiHub, KpiRecord
from chimera.execution.registry import ModuleRegistry
from chimera.execution.runner import TaskPayload, completion_to_kpi, make_classifier, make_executor
from chimera.execution.sandbox import Sandbox
from chimera.execution.scheduler import Scheduler


def rec(i: int) -> KpiRecord:
    return KpiRecord(f"t{i}", "agent", "v1", 1.0, 10, 65536, "OK", {"quality": i / 10})


def test_slow_subscriber_drops_without_blocking_others() -> None:
    hub = KpiHub()
    fast = hub.subscribe(maxsize=100)
    slow = hub.subscribe(maxsize=2)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.extend(r.task_id for r in fast))
    reader.start()
    t0 = time.monotonic()
    delivered = [hub.publish(rec(i)) for i in range(10)]
    elapsed = time.monotonic() - t0
    assert elapsed < 1.0  # publish never waits for the slow reader
    assert delivered[:2] == [2, 2] and delivered[2:] == [1] * 8
    assert slow.dropped == 8 and slow.delivered == 2 and slow.pending() == 2
    assert fast.dropped == 0
    assert hub.drop_counts() == [0, 8]
    fast.close()
    reader.join(5)
    assert got == [f"t{i}" for i in range(10)]
    first = slow.get(timeout=0.1)
    assert first is not None and first.task_id == "t0"
    slow.close()
    assert hub.subscriber_count() == 0
    assert hub.publish(rec(99)) == 0 and hub.published == 11


def test_get_timeout_and_close_wakes_reader() -> None:
    hub = KpiHub(default_queue_size=4)
    sub = hub.subscribe()
    assert sub.maxsize == 4
    assert sub.get(timeout=0.01) is None
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(sub.get()))
    t.start()
    time.sleep(0.02)
    sub.close()
    t.join(2)
    assert out == [None] and sub.closed
    with sub:  # context manager closes idempotently
        pass


def test_record_metrics_are_immutable() -> None:
    m = {"a": 1.0}
    r = KpiRecord("t", "a", "v", 1.0, 1, 1, "OK", m)
    m["a"] = 2.0
    assert r.metrics["a"] == 1.0 and r.recorded_at > 0


def test_every_task_publishes_exactly_one_kpi(sandbox: Sandbox) -> None:
    hub = KpiHub()
    sub = hub.subscribe(maxsize=1000)
    registry = ModuleRegistry(sandbox.compile)
    registry.deploy(guests.marker_guest(4.0), [], "m4")
    sched = Scheduler(
        make_executor(registry, sandbox),
        classify=make_classifier(),
        on_complete=lambda r: hub.publish(completion_to_kpi(r)),
        concurrency=3,
        autostart=False,
    )
    for i in range(50):
        sched.submit(f"k{i}", TaskPayload(b"", agent_id="agent-7"))
    sched.cancel("k7")
    sched.start()
    records = [sub.get(timeout=5) for _ in range(50)]
    sched.shutdown()
    assert sub.get(timeout=0.05) is None  # nothing extra
    assert all(r is not None for r in records)
    by_id = {r.task_id: r for r in records if r is not None}
    assert len(by_id) == 50
    assert by_id["k7"].status == "CANCELLED" and by_id["k7"].module_version == ""
    assert by_id["k7"].agent_id == "agent-7"
    ok = [r for r in by_id.values() if r.task_id != "k7"]
    assert all(r.status == "OK" and r.metrics["marker"] == 4.0 for r in ok)
    assert all(r.module_version == "m4" and r.fuel_consumed > 0 for r in ok)
    assert all(r.memory_peak_bytes == 65536 and r.agent_id == "agent-7" for r in ok)
