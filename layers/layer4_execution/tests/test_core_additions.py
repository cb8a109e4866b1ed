"""Core hooks the service relies on: per-task retries, snapshots, cache discard, entrypoints."""

from __future__ import annotations

import guests
from chimera.execution.cancel import CancelToken
from chimera.execution.sandbox import ExecStatus, Sandbox, has_entrypoint
from chimera.execution.scheduler import (
    Attempt,
    RetryPolicy,
    Scheduler,
    TaskState,
    Verdict,
)

ALIAS = guests.abi_guest(
    extra=(
        '(func (export "other_run") (param i32 i32 i32 i32) (result i32) (i32.const 0))'
        '(func (export "wrong_sig") (param i32) (result i32) (i32.const 0))'
    )
)


def test_per_task_max_retries_and_snapshots() -> None:
    def fail(_a: Attempt) -> str:
        return "nope"

    sched = Scheduler(
        fail,
        concurrency=1,
        retry=RetryPolicy(max_retries=3, base_delay_s=0.01, max_delay_s=0.01),
        classify=lambda _v: Verdict.RETRY,
    )
    try:
        none = sched.submit("none", max_retries=0)
        one = sched.submit("one", max_retries=1)
        default = sched.submit("default")
        assert none.wait(5).attempts == 1 and none.wait(5).state is TaskState.DEAD_LETTERED
        assert one.wait(5).attempts == 2
        assert default.wait(5).attempts == 4
        snap = sched.snapshot("one")
        assert snap is not None and snap.state is TaskState.DEAD_LETTERED and snap.attempts == 2
        assert snap.finished_at is not None and snap.ready_at is None
        assert snap.attempt_started_at is not None and snap.started_at is not None
        assert snap.attempt_started_at > snap.started_at  # the retry started later
        assert "gave up after 2 attempts" in snap.last_error
        assert sched.snapshot("unknown") is None
    finally:
        sched.shutdown()


def test_cache_discard_and_entrypoints(sandbox: Sandbox) -> None:
    compiled = sandbox.compile(ALIAS)
    assert has_entrypoint(compiled.module, "chimera_run")
    assert has_entrypoint(compiled.module, "other_run")
    assert not has_entrypoint(compiled.module, "wrong_sig")
    assert not has_entrypoint(compiled.module, "missing")
    assert sandbox.run(compiled, (), b"", entrypoint="other_run").status is ExecStatus.OK
    missing = sandbox.run(compiled, (), b"", entrypoint="missing", cancel=CancelToken())
    assert missing.status is ExecStatus.GUEST_ERROR and "missing" in missing.message
    assert sandbox.modules.discard(compiled.digest)
    assert not sandbox.modules.discard(compiled.digest)
    misses = sandbox.modules.misses
    sandbox.compile(ALIAS)
    assert sandbox.modules.misses == misses + 1  # compiled again after the discard
