"""Deployment store: atomic hot swap (running tasks keep their deployment), rollback, history."""

from __future__ import annotations

import threading
from typing import Any

import grpc
import pytest

import guests
from chimera.execution.cancel import CancelToken
from chimera.execution.deployments import (
    Deployment,
    DeploymentStore,
    ModuleNotInSlot,
    NoActiveDeployment,
    NothingToRollBack,
    SlotNotFound,
    VersionConflict,
    VersionNotFound,
)
from chimera.execution.runner import AttemptOutcome, TaskPayload, classify, make_executor
from chimera.execution.sandbox import (
    RUN_EXPORT,
    CompiledModule,
    InvalidModule,
    Limits,
    RunResult,
    Sandbox,
)
from chimera.execution.scheduler import CompletionRecord, Scheduler, TaskState
from chimera.framework import ServiceError

SLOT = "slot"


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
        entrypoint: str = RUN_EXPORT,
    ) -> RunResult:
        if input == b"slow":
            self.entered.set()
            assert self.gate.wait(10)
        return self.inner.run(module, params, input, limits, cancel, entrypoint=entrypoint)


def deploy(
    store: DeploymentStore, sandbox: Sandbox, wasm: bytes, *, activate: bool = True
) -> Deployment:
    """Compiles (validating) first, then stores: the service's DeployModule order."""
    return store.add_module(SLOT, sandbox.compile(wasm), "verdict", activate=activate).deployment


def marker(rec: CompletionRecord) -> float:
    outcome = rec.value
    assert isinstance(outcome, AttemptOutcome) and outcome.result.output is not None
    return outcome.result.output.metrics["marker"]


def test_running_task_keeps_old_version_new_task_gets_new(sandbox: Sandbox) -> None:
    store = DeploymentStore()
    v1 = deploy(store, sandbox, guests.marker_guest(1.0))
    gated = GatedSandbox(sandbox)
    sched = Scheduler(
        make_executor(store, gated),  # type: ignore[arg-type]
        classify=classify,
        concurrency=2,
    )
    old = sched.submit("started-on-v1", TaskPayload(SLOT, input=b"slow"))
    assert gated.entered.wait(5)  # deployment resolved, task is running
    v2 = deploy(store, sandbox, guests.marker_guest(2.0))
    new = sched.submit("submitted-after-v2", TaskPayload(SLOT, input=b"fast")).wait(5)
    assert old.done() is False  # still running while v2 serves new work
    gated.gate.set()
    old_rec = old.wait(5)
    sched.shutdown()
    assert old_rec.state is TaskState.SUCCEEDED and new.state is TaskState.SUCCEEDED
    assert marker(old_rec) == 1.0 and old_rec.value.deployment == v1
    assert marker(new) == 2.0 and new.value.deployment == v2
    assert (v1.version, v2.version) == (1, 2)


def test_rollback_history_and_genome_only_deploy(sandbox: Sandbox) -> None:
    store = DeploymentStore()
    with pytest.raises(SlotNotFound):
        store.resolve(SLOT)
    m1 = deploy(store, sandbox, guests.marker_guest(1.0), activate=False)  # v1, stored only
    with pytest.raises(NoActiveDeployment):
        store.resolve(SLOT)
    with pytest.raises(NoActiveDeployment):
        store.deploy_genome(SLOT, [1.0], genome_id="params-only-without-module")
    a = store.deploy_genome(SLOT, [0.5], genome_id="a", module_sha256=m1.module_sha256).deployment
    with pytest.raises(NothingToRollBack):
        store.rollback(SLOT)  # a replaced nothing
    deploy(store, sandbox, guests.marker_guest(2.0))  # v3
    b = store.deploy_genome(SLOT, [0.5], genome_id="b").deployment  # on the active module
    c = store.deploy_genome(SLOT, [0.7], genome_id="c").deployment  # genome swap, module kept
    assert (a.version, b.version, c.version) == (2, 4, 5)
    assert a.module is m1.module and c.module is b.module and c.params == (0.7,)
    assert store.resolve(SLOT) == c
    back = store.rollback(SLOT)
    assert back.deployment == b and back.active and back.previous_version == c.version
    assert store.rollback(SLOT).deployment == c  # a second rollback undoes the first
    first = store.rollback(SLOT, a.version)
    assert first.deployment == a and first.previous_version == c.version
    with pytest.raises(VersionNotFound):
        store.rollback(SLOT, 9)
    assert store.resolve(SLOT) == a
    # History: every version, newest first, with the one each replaced when it
    # last became active (the record ListVersions reports).
    views, active = store.list(SLOT, 10)
    assert active == a.version
    assert [(v.deployment.version, v.active, v.previous_version) for v in views] == [
        (5, False, 4),
        (4, False, 5),
        (3, False, 2),
        (2, True, 5),
        (1, False, 0),
    ]
    assert store.resolve(SLOT, 4) == b
    r = sandbox.run(store.resolve(SLOT).module, [], b"")
    assert r.output is not None and r.output.metrics["marker"] == 1.0


def test_invalid_deploys_never_activate(sandbox: Sandbox) -> None:
    store = DeploymentStore()
    v1 = deploy(store, sandbox, guests.OK_GUEST)
    with pytest.raises(InvalidModule):
        deploy(store, sandbox, guests.FORBIDDEN_IMPORT)
    with pytest.raises(InvalidModule):
        deploy(store, sandbox, b"not wasm")
    with pytest.raises(ModuleNotInSlot):
        store.deploy_genome(SLOT, [1.0], genome_id="unknown", module_sha256="0" * 64)
    views, active = store.list(SLOT, 10)
    assert store.resolve(SLOT) == v1 and active == 1 and len(views) == 1
    # Non-finite genomes are refused by the service's request validation
    # (test_service_deploy.py), before they reach the store.


def test_concurrent_deploys_and_reads_are_consistent(sandbox: Sandbox) -> None:
    store = DeploymentStore()
    base = deploy(store, sandbox, guests.OK_GUEST, activate=False)
    store.deploy_genome(SLOT, [0.0], genome_id="base", module_sha256=base.module_sha256)
    seen: list[tuple[int, float]] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            d = store.resolve(SLOT)
            seen.append((d.version, d.params[0]))

    readers = [threading.Thread(target=reader) for _ in range(3)]
    for t in readers:
        t.start()
    for i in range(1, 200):
        store.deploy_genome(SLOT, [float(i)], genome_id=f"g{i}")
    stop.set()
    for t in readers:
        t.join()
    # Every snapshot is internally consistent: version n carries genome n - 2.
    assert seen and all(params == float(version - 2) for version, params in seen)
    assert store.resolve(SLOT).version == 201


def test_refusals_are_the_frameworks_errors_with_their_status(sandbox: Sandbox) -> None:
    # The servicer lets the store's refusals pass: each must carry its own gRPC status.
    store = DeploymentStore()
    with pytest.raises(SlotNotFound) as unknown:
        store.resolve(SLOT)
    deploy(store, sandbox, guests.marker_guest(1.0), activate=False)
    with pytest.raises(NoActiveDeployment) as inactive:
        store.resolve(SLOT)
    with pytest.raises(VersionNotFound) as missing:
        store.resolve(SLOT, 7)
    module_sha256 = store.list(SLOT, 1)[0][0].deployment.module_sha256
    store.deploy_genome(SLOT, [0.5], module_sha256=module_sha256)  # v2, active
    with pytest.raises(VersionConflict) as raced:
        store.deploy_genome(SLOT, [0.6], expected_active_version=1)
    assert [e.value.code for e in (unknown, inactive, missing, raced)] == [
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ABORTED,
    ]
    assert isinstance(unknown.value, ServiceError) and unknown.value.message == str(unknown.value)
