"""Scheduler: priority order, concurrency, bounds, retries, dead letters, cancellation."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest

import guests
from chimera.execution.deployments import DeploymentStore
from chimera.execution.runner import AttemptOutcome, TaskPayload, classify, make_executor
from chimera.execution.sandbox import ExecStatus, Limits, Sandbox
from chimera.execution.scheduler import (
    Attempt,
    CompletionRecord,
    DuplicateTask,
    Priority,
    QueueFull,
    RetryPolicy,
    Scheduler,
    SchedulerClosed,
    TaskState,
    Verdict,
)
from chimera.testing.helpers import FakeClock, wait_until


class Recorder:
    """Collects completion records; counts per task id."""

    def __init__(self) -> None:
        self.records: list[CompletionRecord] = []
        self._lock = threading.Lock()

    def __call__(self, rec: CompletionRecord) -> None:
        with self._lock:
            self.records.append(rec)

    def by_id(self) -> dict[str, list[CompletionRecord]]:
        out: dict[str, list[CompletionRecord]] = {}
        with self._lock:
            for r in self.records:
                out.setdefault(r.task_id, []).append(r)
        return out


def test_thousand_tasks_priority_order_concurrency_and_records(sandbox: Sandbox) -> None:
    module = sandbox.compile(guests.OK_GUEST)
    lock = threading.Lock()
    active = [0, 0]  # current, max observed by the executor itself
    dispatched: dict[str, int] = {}

    def executor(a: Attempt) -> Any:
        with lock:
            active[0] += 1
            active[1] = max(active[1], active[0])
            dispatched[a.task_id] = a.dispatch_seq
        try:
            if a.dispatch_seq % 10 == 0:
                time.sleep(0.0005)  # let the workers overlap
            return sandbox.run(module, [], b"", cancel=a.cancel)
        finally:
            with lock:
                active[0] -= 1

    rec = Recorder()
    sched = Scheduler(executor, concurrency=4, max_queue=1000, on_complete=rec, autostart=False)
    rng = random.Random(4)
    levels = list(Priority)
    submitted = []
    for i in range(1000):
        prio = rng.choice(levels)
        tid = f"t{i:04d}"
        sched.submit(tid, None, priority=prio)
        submitted.append((tid, int(prio), i))
    with pytest.raises(QueueFull):
        sched.submit("overflow", None)
    sched.start()
    wait_until(lambda: len(rec.records) == 1000, timeout=30)
    sched.shutdown()

    expected = [tid for tid, _, _ in sorted(submitted, key=lambda s: (-s[1], s[2]))]
    actual = sorted(dispatched, key=dispatched.__getitem__)
    assert actual == expected  # priority first, FIFO within a priority
    per_task = rec.by_id()
    assert len(per_task) == 1000 and all(len(v) == 1 for v in per_task.values())
    assert all(r.state is TaskState.SUCCEEDED and r.value.ok for r in rec.records)
    assert 2 <= active[1] <= 4
    assert sched.stats()["max_running"] <= 4


def test_fifo_within_priority_while_running() -> None:
    gate = threading.Event()
    order: list[str] = []

    def executor(a: Attempt) -> Any:
        if a.task_id == "blocker":
            gate.wait(5)
        order.append(a.task_id)
        return type("R", (), {"ok": True})()

    sched = Scheduler(executor, concurrency=1)
    sched.submit("blocker")
    wait_until(lambda: sched.state("blocker") is TaskState.RUNNING)
    arrivals = [("low1", 25), ("crit1", 100), ("low2", 25), ("bg", 1), ("crit2", 100), ("n", 50)]
    for name, prio in arrivals:
        sched.submit(name, priority=prio)
    gate.set()
    wait_until(lambda: len(order) == 7)
    sched.shutdown()
    assert order == ["blocker", "crit1", "crit2", "n", "low1", "low2", "bg"]


def test_retry_policy_defaults_match_design() -> None:
    p = RetryPolicy()
    assert (p.max_retries, p.base_delay_s, p.factor, p.max_delay_s) == (3, 1.0, 2.0, 300.0)
    assert [p.delay(n) for n in range(10)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]
    with pytest.raises(ValueError):
        RetryPolicy(factor=0.5)


def test_retries_backoff_then_dead_letter_with_fake_clock() -> None:
    clock = FakeClock()
    attempts: list[tuple[int, float]] = []

    def executor(a: Attempt) -> Any:
        attempts.append((a.attempt, clock()))
        raise RuntimeError(f"boom {a.attempt}")

    rec = Recorder()
    sched = Scheduler(
        executor,
        concurrency=2,
        retry=RetryPolicy(max_retries=3, base_delay_s=1.0, factor=2.0, max_delay_s=3.0),
        clock=clock,
        on_complete=rec,
        max_idle_wait_s=0.01,
    )
    handle = sched.submit("flaky")
    for expected_delay in (1.0, 2.0, 3.0):  # 4.0 is capped at 3.0
        wait_until(lambda: sched.state("flaky") is TaskState.RETRY_WAIT)
        n = len(attempts)
        clock.advance(expected_delay - 0.01)
        sched.wakeup()
        time.sleep(0.03)
        assert len(attempts) == n, "retried before its backoff elapsed"
        clock.advance(0.01)
        sched.wakeup()
        wait_until(lambda: len(attempts) == n + 1)
    record = handle.wait(5)
    sched.shutdown()
    assert record.state is TaskState.DEAD_LETTERED
    assert record.attempts == 4
    assert record.retry_delays == (1.0, 2.0, 3.0)
    assert "boom 4" in record.error
    assert [a for a, _ in attempts] == [1, 2, 3, 4]
    gaps = [b[1] - a[1] for a, b in zip(attempts, attempts[1:])]
    assert gaps == pytest.approx([1.0, 2.0, 3.0])
    assert [r.task_id for r in sched.dead_letters()] == ["flaky"]
    assert len(rec.records) == 1


def test_success_after_retry_and_non_retryable_failure() -> None:
    calls: dict[str, int] = {}

    def executor(a: Attempt) -> Any:
        calls[a.task_id] = calls.get(a.task_id, 0) + 1
        if a.task_id == "eventually" and a.attempt < 3:
            return "transient"
        if a.task_id == "fatal":
            return "fatal"
        return "ok"

    def classify(v: Any) -> Verdict:
        return {"ok": Verdict.SUCCESS, "transient": Verdict.RETRY, "fatal": Verdict.FAIL}[v]

    sched = Scheduler(
        executor, classify=classify, retry=RetryPolicy(base_delay_s=0.001, max_delay_s=0.002)
    )
    ok = sched.submit("eventually").wait(5)
    bad = sched.submit("fatal").wait(5)
    sched.shutdown()
    assert ok.state is TaskState.SUCCEEDED and ok.attempts == 3
    assert bad.state is TaskState.FAILED and bad.attempts == 1 and calls["fatal"] == 1
    assert sched.dead_letters() == []


def test_the_service_mode_dead_letters_failures_and_snapshots_carry_the_last_value() -> None:
    sched = Scheduler(
        lambda a: "fatal" if a.task_id == "bad" else "ok",
        classify=lambda v: Verdict.SUCCESS if v == "ok" else Verdict.FAIL,
        dead_letter_failed=True,
    )
    bad = sched.submit("bad", {"spec": 1}).wait(5)
    good = sched.submit("good", {"spec": 2}).wait(5)
    assert bad.state is TaskState.FAILED and good.state is TaskState.SUCCEEDED
    [dead] = sched.dead_letters()
    assert dead.task_id == "bad" and dead.payload == {"spec": 1}
    assert dead.value == "fatal" and dead.attempt_started_at is not None
    snap = sched.snapshot("good")
    assert snap is not None and snap.payload == {"spec": 2} and snap.last_value == "ok"
    handle = sched.handle("good")
    assert handle is not None and handle.done() and handle.wait(0).state is TaskState.SUCCEEDED
    assert sched.handle("unknown") is None
    sched.shutdown()


def test_cancel_queued_and_unknown() -> None:
    gate = threading.Event()
    rec = Recorder()

    def executor(a: Attempt) -> Any:
        gate.wait(5)
        return type("R", (), {"ok": True})()

    sched = Scheduler(executor, concurrency=1, on_complete=rec)
    sched.submit("running")
    wait_until(lambda: sched.state("running") is TaskState.RUNNING)
    h = sched.submit("queued")
    assert sched.cancel("queued")
    assert not sched.cancel("queued")  # already finished
    assert not sched.cancel("nope")
    assert h.wait(1).state is TaskState.CANCELLED
    assert h.wait(1).attempts == 0
    gate.set()
    wait_until(lambda: len(rec.records) == 2)
    sched.shutdown()
    states = {r.task_id: r.state for r in rec.records}
    assert states == {"queued": TaskState.CANCELLED, "running": TaskState.SUCCEEDED}


def test_duplicate_and_invalid_submissions() -> None:
    gate = threading.Event()
    sched = Scheduler(lambda a: gate.wait(5), concurrency=1, classify=lambda v: Verdict.SUCCESS)
    sched.submit("a")
    with pytest.raises(DuplicateTask):
        sched.submit("a")
    with pytest.raises(ValueError):
        sched.submit("b", priority=0)
    with pytest.raises(ValueError):
        sched.submit("", priority=50)
    with pytest.raises(ValueError):
        sched.submit("t", timeout_s=0)
    gate.set()
    sched.shutdown(cancel_pending=False)
    with pytest.raises(SchedulerClosed):
        sched.submit("c")


def test_shutdown_gives_every_task_one_record() -> None:
    gate = threading.Event()
    rec = Recorder()
    sched = Scheduler(
        lambda a: gate.wait(5) and type("R", (), {"ok": True})(),
        concurrency=2,
        on_complete=rec,
    )
    for i in range(20):
        sched.submit(f"t{i}")
    wait_until(lambda: sched.stats()["running"] == 2)
    threading.Timer(0.05, gate.set).start()
    sched.shutdown(cancel_pending=True, timeout=5)
    per = rec.by_id()
    assert len(per) == 20 and all(len(v) == 1 for v in per.values())
    assert sum(r.state is TaskState.CANCELLED for r in rec.records) >= 18


def test_executor_exception_and_broken_sink_do_not_kill_workers() -> None:
    def sink(_: CompletionRecord) -> None:
        raise RuntimeError("sink broken")

    def executor(a: Attempt) -> Any:
        if a.task_id == "bad":
            raise ValueError("bad payload")
        return type("R", (), {"ok": True})()

    sched = Scheduler(executor, concurrency=1, on_complete=sink, retry=RetryPolicy(max_retries=0))
    bad = sched.submit("bad").wait(5)
    good = sched.submit("good").wait(5)
    sched.shutdown()
    assert bad.state is TaskState.DEAD_LETTERED and "ValueError: bad payload" in bad.error
    assert good.state is TaskState.SUCCEEDED


# -- with the real sandbox, deployment store and executor ---------------------


@pytest.fixture()
def wired(sandbox: Sandbox):  # type: ignore[no-untyped-def]
    store = DeploymentStore()
    rec = Recorder()

    def deploy(name: str, wasm: bytes) -> None:
        store.add_module(name, sandbox.compile(wasm), "verdict", activate=True)

    def build(**kw: Any) -> Scheduler:
        kw.setdefault("classify", classify)
        return Scheduler(make_executor(store, sandbox), on_complete=rec, **kw)

    return deploy, rec, build


def test_timeout_retries_then_dead_letters(wired) -> None:  # type: ignore[no-untyped-def]
    deploy, rec, build = wired
    deploy("spin", guests.INFINITE_LOOP)
    sched = build(retry=RetryPolicy(max_retries=1, base_delay_s=0.001))
    payload = TaskPayload("spin", limits=Limits(fuel=10**15, timeout_ms=60_000))
    record = sched.submit("slow", payload, timeout_s=0.05).wait(10)
    sched.shutdown()
    assert record.state is TaskState.DEAD_LETTERED
    assert record.attempts == 2
    assert isinstance(record.value, AttemptOutcome)
    assert record.value.status is ExecStatus.DEADLINE_EXCEEDED


def test_cancel_running_wasm_task(wired) -> None:  # type: ignore[no-untyped-def]
    deploy, rec, build = wired
    deploy("spin", guests.INFINITE_LOOP)
    sched = build()
    payload = TaskPayload("spin", limits=Limits(fuel=10**15, timeout_ms=60_000))
    h = sched.submit("spin", payload)
    wait_until(lambda: sched.state("spin") is TaskState.RUNNING)
    time.sleep(0.02)
    assert sched.cancel("spin", "user asked")
    record = h.wait(5)
    sched.shutdown()
    assert record.state is TaskState.CANCELLED
    assert record.value.status is ExecStatus.CANCELLED
    assert "user asked" in record.error


def test_trapping_task_fails_others_succeed(wired) -> None:  # type: ignore[no-untyped-def]
    deploy, rec, build = wired
    deploy("ok", guests.OK_GUEST)
    deploy("trap", guests.UNREACHABLE)
    sched = build(concurrency=3)
    handles = [
        sched.submit(f"{kind}{i}", TaskPayload(kind)) for i in range(6) for kind in ("ok", "trap")
    ]
    records = [h.wait(5) for h in handles]
    sched.shutdown()
    for r in records:
        if r.task_id.startswith("trap"):
            assert r.state is TaskState.FAILED and r.value.status is ExecStatus.TRAP
            assert r.attempts == 1  # deterministic failure: not retried
        else:
            assert r.state is TaskState.SUCCEEDED


def test_finished_tasks_and_dead_letters_are_bounded() -> None:
    sched = Scheduler(
        lambda a: "x",
        classify=lambda v: Verdict.RETRY,
        retry=RetryPolicy(max_retries=0),
        retain_finished=5,
        max_dead_letters=3,
        concurrency=1,
    )
    handles = [sched.submit(f"d{i}") for i in range(10)]
    for h in handles:
        assert h.wait(5).state is TaskState.DEAD_LETTERED
    assert [r.task_id for r in sched.dead_letters()] == ["d7", "d8", "d9"]
    assert sched.record("d0") is None and sched.state("d0") is None
    rec9 = sched.record("d9")
    assert rec9 is not None and rec9.attempts == 1
    # A finished id may be submitted again (e.g. a replay from the dead-letter list).
    assert sched.submit("d9").wait(5).state is TaskState.DEAD_LETTERED
    sched.shutdown()
    assert [r.task_id for r in sched.dead_letters()] == ["d8", "d9", "d9"]
    assert sched.stats()["dead_letters"] == 3
