"""Registry: atomic hot swap (running tasks keep their version), rollback, history."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import guests
from chimera.execution import workload
from chimera.execution.artifacts import kernel_wasm_bytes
from chimera.execution.cancel import CancelToken
from chimera.execution.registry import ModuleRegistry, NoActiveVersion
from chimera.execution.runner import (
    ExecutionOutcome,
    TaskPayload,
    completion_to_kpi,
    make_classifier,
    make_executor,
)
from chimera.execution.sandbox import CompiledModule, InvalidModule, Limits, RunResult, Sandbox
from chimera.execution.scheduler import Scheduler, TaskState


class GatedSandbox:
    """Delays runs whose input is b"slow" until the test opens the gate."""

    def __init__(self, inner: Sandbox) -> None:
        self.inner = inner
        self.entered = threading.Event()
        self.gate = threading.Event()

    def run(
        self,
        module: CompiledModule,
        params: Any,
        input: bytes,
        limits: Limits | None = None,
        cancel: CancelToken | None = None,
    ) -> RunResult:
        if input == b"slow":
            self.entered.set()
            assert self.gate.wait(10)
        return self.inner.run(module, params, input, limits, cancel)


def marker(rec: Any) -> float:
    outcome = rec.value
    assert isinstance(outcome, ExecutionOutcome) and outcome.result.output is not None
    return outcome.result.output.metrics["marker"]


def test_running_task_keeps_old_version_new_task_gets_new(sandbox: Sandbox) -> None:
    registry = ModuleRegistry(sandbox.compile)
    v1 = registry.deploy(guests.marker_guest(1.0), [], "v1")
    gated = GatedSandbox(sandbox)
    sched = Scheduler(
        make_executor(registry, gated),  # type: ignore[arg-type]
        classify=make_classifier(),
        concurrency=2,
    )
    old = sched.submit("started-on-v1", TaskPayload(b"slow"))
    assert gated.entered.wait(5)  # snapshot taken, task is running
    v2 = registry.deploy(guests.marker_guest(2.0), [], "v2")
    new = sched.submit("submitted-after-v2", TaskPayload(b"fast")).wait(5)
    assert old.done() is False  # still running while v2 serves new work
    gated.gate.set()
    old_rec = old.wait(5)
    sched.shutdown()
    assert old_rec.state is TaskState.SUCCEEDED and new.state is TaskState.SUCCEEDED
    assert marker(old_rec) == 1.0 and old_rec.value.version == v1
    assert marker(new) == 2.0 and new.value.version == v2
    assert completion_to_kpi(old_rec).module_version == "v1"
    assert completion_to_kpi(new).module_version == "v2"


def test_rollback_history_and_genome_only_deploy(sandbox: Sandbox) -> None:
    registry = ModuleRegistry(sandbox.compile)
    with pytest.raises(NoActiveVersion):
        registry.active()
    with pytest.raises(NoActiveVersion):
        registry.deploy(None, [1.0], "params-only-without-module")
    v1 = registry.deploy(guests.marker_guest(1.0), [0.5], "a")
    v2 = registry.deploy(guests.marker_guest(2.0), [0.5], "b")
    v3 = registry.deploy(None, [0.7], "c")  # genome swap, module kept
    assert v3.module is v2.module and v3.params == (0.7,)
    assert registry.active() == v3
    assert registry.rollback() == v2
    assert registry.rollback() == v1
    with pytest.raises(NoActiveVersion):
        registry.rollback()
    assert registry.active() == v1
    assert [v.version for v in registry.versions()] == [1, 2, 3]
    assert [(h.action, h.version) for h in registry.history()] == [
        ("deploy", 1),
        ("deploy", 2),
        ("deploy", 3),
        ("rollback", 2),
        ("rollback", 1),
    ]
    assert registry.get(2) == v2
    r = sandbox.run(registry.active().module, [], b"")
    assert r.output is not None and r.output.metrics["marker"] == 1.0


def test_invalid_deploys_never_activate(sandbox: Sandbox) -> None:
    registry = ModuleRegistry(sandbox.compile)
    v1 = registry.deploy(guests.OK_GUEST, [], "good")
    with pytest.raises(InvalidModule):
        registry.deploy(guests.FORBIDDEN_IMPORT, [], "evil")
    with pytest.raises(InvalidModule):
        registry.deploy(b"not wasm", [], "junk")
    with pytest.raises(ValueError, match=r"params\[1\]"):
        registry.deploy(None, [1.0, float("nan")], "nan")
    assert registry.active() == v1 and len(registry.versions()) == 1


def test_concurrent_deploys_and_reads_are_consistent(sandbox: Sandbox) -> None:
    registry = ModuleRegistry(sandbox.compile)
    registry.deploy(guests.OK_GUEST, [0.0], "base")
    seen: list[tuple[int, float]] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            v = registry.active()
            seen.append((v.version, v.params[0]))

    readers = [threading.Thread(target=reader) for _ in range(3)]
    for t in readers:
        t.start()
    for i in range(1, 200):
        registry.deploy(None, [float(i)], f"g{i}")
    stop.set()
    for t in readers:
        t.join()
    # Every snapshot is internally consistent: version n carries genome n - 1.
    assert all(params == float(version - 1) for version, params in seen)
    assert registry.active().version == 200


def test_genome_deploy_changes_kernel_kpis(sandbox: Sandbox) -> None:
    """The closed loop in miniature: deploying a better genome raises the KPI."""
    registry = ModuleRegistry(sandbox.compile)
    registry.deploy(kernel_wasm_bytes(), workload.BAD_GENOME, "bad")
    sched = Scheduler(make_executor(registry, sandbox), classify=make_classifier())
    task = TaskPayload(workload.generate_instance(9, 150).encode(), agent_id="agent-1")
    before = completion_to_kpi(sched.submit("before", task).wait(10), "agent-1")
    registry.deploy(None, workload.GOOD_GENOME, "good")
    after = completion_to_kpi(sched.submit("after", task).wait(10), "agent-1")
    sched.shutdown()
    assert before.status == after.status == "OK"
    assert after.metrics["quality"] > before.metrics["quality"] + 0.2
    assert after.fuel_consumed > before.fuel_consumed
    assert (before.module_version, after.module_version) == ("bad", "good")
    assert after.agent_id == "agent-1" and after.metrics["attempts"] == 1.0
