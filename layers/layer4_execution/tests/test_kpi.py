"""KPI hub: bounded per-subscriber queues, drop counting, unsubscribe, immutable records.

One report per finished attempt, end to end through the service, is
test_service_load.py's test_every_finished_task_publishes_exactly_one_kpi.
"""

from __future__ import annotations

import threading
import time

import pytest

from chimera.execution.kpi import HubClosed, KpiHub, KpiRecord, TooManySubscribers


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


def test_since_gets_the_retained_backlog_and_then_live_reports_once_each() -> None:
    hub = KpiHub(retain=3)
    for i in range(5):
        hub.publish(KpiRecord(f"t{i}", "a", "v1", 1.0, 1, 1, "OK", recorded_at=100.0 + i))
    sub, backlog = hub.subscribe_since(102.5)
    assert [r.task_id for r in backlog] == ["t3", "t4"]  # t0, t1 were not retained; t2 too old
    assert hub.subscribe_since(None)[1] == []  # no since: live only
    hub.publish(KpiRecord("t5", "a", "v1", 1.0, 1, 1, "OK", recorded_at=105.0))
    live = sub.get(timeout=1)
    assert live is not None and live.task_id == "t5" and sub.get(timeout=0.01) is None
    assert KpiHub().subscribe_since(0.0)[1] == []  # retain=0 keeps nothing


def test_drops_are_reported_when_they_happen_and_subscribers_are_capped() -> None:
    drops: list[int] = []
    hub = KpiHub(max_subscribers=2, on_drop=drops.append)
    full, roomy = hub.subscribe(1), hub.subscribe(10)
    for i in range(3):
        hub.publish(rec(i))
    assert drops == [1, 1] and full.dropped == 2 and roomy.pending() == 3
    with pytest.raises(TooManySubscribers) as caught:
        hub.subscribe()
    assert (caught.value.open_now, caught.value.limit) == (2, 2)
    hub.close()
    assert full.closed and roomy.closed and hub.subscriber_count() == 0
    with pytest.raises(HubClosed):
        hub.subscribe()



def test_follow_yields_backlog_then_live_and_stops_when_closed_or_inactive() -> None:
    published: list[int] = []
    hub = KpiHub(retain=10, on_publish=lambda: published.append(1))
    hub.publish(rec(0))
    sub, backlog = hub.subscribe_since(0.0)
    hub.publish(rec(1))
    followed = sub.follow(backlog, active=lambda: True, poll_s=0.01)
    assert [next(followed).task_id, next(followed).task_id] == ["t0", "t1"]
    sub.close()
    assert list(followed) == []  # closed and drained: the stream ends
    assert len(published) == 2
    inactive = hub.subscribe()
    hub.publish(rec(2))
    assert list(inactive.follow([], active=lambda: False)) == []  # the caller went away


def test_matches_filters_by_slot_and_agent_empty_matches_any() -> None:
    record = KpiRecord("t", "agent-a", "1", 1.0, 1, 1, "OK", module_name="slot-a")
    assert record.matches("", "") and record.matches("slot-a", "agent-a")
    assert not record.matches("slot-b", "") and not record.matches("", "agent-b")
