"""DeployModule's 3->4 gate, versions, genome hot swap and rollback, through the real server."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import time

import grpc
import pytest
import wasmtime

import guests
from chimera.wasm.guest import GuestResult, encode_result
from chimera.execution.artifacts import kernel_wasm_bytes
from chimera.execution.gate import TrustingGate, VerdictGate
from chimera.execution.sandbox import Sandbox
from chimera.execution.service import SERVICE_NAME
from chimera.execution.workload import BAD_GENOME, GOOD_GENOME, generate_instance
from chimera.testing.helpers import free_port
from chimera.v1 import common_pb2, execution_pb2, planning_pb2, validation_pb2
from service_support import FAST_OPTIONS, Harness, collect_kpis, running, wait_streams


def slow_marker(marker: float) -> bytes:
    """Spins 150M loop iterations (~0.1 s, 9e8 fuel), then returns ``marker``."""
    return guests.abi_guest(
        "(local $i i32) (local.set $i (i32.const 150000000))"
        " (loop $l (local.set $i (i32.sub (local.get $i) (i32.const 1))) (br_if $l (local.get $i)))"
        " (i32.const 0)",
        result=encode_result(GuestResult((marker,), {"marker": marker})),
    )


NO_ABI_EXPORTS = bytes(wasmtime.wat2wasm('(module (memory (export "memory") 1))'))


def code_of(excinfo: pytest.ExceptionInfo[grpc.RpcError]) -> grpc.StatusCode:
    return excinfo.value.code()  # type: ignore[attr-defined,no-any-return]


def details_of(excinfo: pytest.ExceptionInfo[grpc.RpcError]) -> str:
    return excinfo.value.details()  # type: ignore[attr-defined,no-any-return]


def deploy_raw(h: Harness, name: str, wasm: bytes, verdict_id: str) -> execution_pb2.Deployment:
    return h.stub.DeployModule(
        execution_pb2.DeployModuleRequest(
            module_name=name, wasm=wasm, verdict_id=verdict_id, activate=True
        )
    )


def test_gate_admits_module_with_valid_verdict_for_its_exact_bytes() -> None:
    with running() as h:
        verdict = h.layer3.verdict_for(guests.OK_GUEST, "ok")
        dep = deploy_raw(h, "ok", guests.OK_GUEST, verdict)
        assert dep.version == 1 and dep.active and dep.previous_version == 0
        assert dep.verdict_id == verdict
        assert dep.module_sha256 == hashlib.sha256(guests.OK_GUEST).hexdigest()
        assert h.layer3.calls == 1
        rec = h.wait_terminal(h.submit("ok").task_id)
        assert rec.status == common_pb2.TASK_STATUS_SUCCEEDED
        assert h.metric("layer4_active_modules") == 1


def one_task_plan() -> planning_pb2.Plan:
    """A small plan that layer 3's plan policy passes."""
    return planning_pb2.Plan(
        id="plan-run-ok",
        goal=planning_pb2.Goal(id="goal-run-ok", description="run the ok module"),
        tasks=[
            planning_pb2.Task(
                id="run",
                title="run ok",
                operation="run_module",
                estimated_duration_ms=100,
                assigned_layer=common_pb2.LAYER_EXECUTION,
            )
        ],
        timeline=[
            planning_pb2.TimelineEntry(
                task_id="run", start_offset_ms=0, end_offset_ms=100, on_critical_path=True
            )
        ],
        critical_path=["run"],
        total_duration_ms=100,
        revision=1,
    )


def test_gate_refuses_missing_invalid_mismatched_and_plan_verdicts() -> None:
    with running() as h:
        cache = h.server.servicer(SERVICE_NAME).sandbox.modules
        # Layer 3 says no to exactly these bytes (a required export is missing).
        invalid = h.layer3.validate(guests.OK_GUEST, "ok", required_exports=["optimize_v2"])
        assert not invalid.is_valid
        assert invalid.subject_sha256 == hashlib.sha256(guests.OK_GUEST).hexdigest()
        plan = h.layer3.stub.ValidatePlan(
            validation_pb2.ValidatePlanRequest(plan=one_task_plan()), timeout=30
        )
        assert plan.is_valid, list(plan.findings)
        refusals = {
            "unknown": ("no-such-verdict", "unknown"),
            "invalid": (invalid.verdict_id, "not valid (module.missing_export"),
            "mismatch": (h.layer3.verdict_for(guests.marker_guest(7.0), "ok"), "SHA-256"),
            "plan": (plan.verdict_id, "plan verdict"),
        }
        for case, (verdict_id, words) in refusals.items():
            with pytest.raises(grpc.RpcError) as exc:
                deploy_raw(h, "ok", guests.OK_GUEST, verdict_id)
            assert code_of(exc) == grpc.StatusCode.FAILED_PRECONDITION, case
            assert words in details_of(exc), (case, details_of(exc))
        # Nothing was stored, and refused bytes were not kept compiled.
        with pytest.raises(grpc.RpcError) as exc:
            h.stub.ListVersions(execution_pb2.ListVersionsRequest(module_name="ok"))
        assert code_of(exc) == grpc.StatusCode.NOT_FOUND
        assert len(cache) == 0
        assert h.metric("layer4_active_modules") == 0


def test_unreachable_validation_service_is_unavailable_not_admitted() -> None:
    dead = f"127.0.0.1:{free_port()}"
    with running(gate=lambda _target: VerdictGate(dead, timeout_seconds=2.0)) as h:
        with pytest.raises(grpc.RpcError) as exc:
            deploy_raw(h, "ok", guests.OK_GUEST, "any")
        assert code_of(exc) == grpc.StatusCode.UNAVAILABLE
        assert dead in details_of(exc)


def test_trusting_gate_is_explicit_and_loud(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="chimera.execution.gate"):
        with running(gate=lambda _target: TrustingGate()) as h:
            dep = deploy_raw(h, "ok", guests.OK_GUEST, "unchecked")
            assert dep.version == 1 and h.layer3.calls == 0
    assert any("UNVALIDATED MODULE ADMITTED" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "wasm, words",
    [
        (b"\x7fELF" + bytes(60), "bad magic"),
        (b"\0as", "header needs 8"),
        (b"\0asm\x02\0\0\0" + bytes(8), "unsupported binary version"),
        (b"\0asm\x01\0\0\0\x01\x05garbage", "malformed module"),
        (guests.FORBIDDEN_IMPORT, "import 'env.host_fn' is not allowed"),
        (
            NO_ABI_EXPORTS,
            "chimera_abi_version",
        ),
    ],
)
def test_invalid_modules_are_rejected_before_the_gate(wasm: bytes, words: str) -> None:
    with running() as h:
        # Layer 3's verdict on the bytes, valid or not: layer 4's own checks
        # refuse them before the gate asks for it.
        verdict_id = h.layer3.validate(wasm, "bad").verdict_id
        with pytest.raises(grpc.RpcError) as exc:
            deploy_raw(h, "bad", wasm, verdict_id)
        assert code_of(exc) == grpc.StatusCode.INVALID_ARGUMENT
        assert "field 'wasm'" in details_of(exc) and words in details_of(exc), details_of(exc)
        assert h.layer3.calls == 0


def test_invalid_deploys_never_activate() -> None:
    with running() as h:
        v1 = h.deploy("ok", guests.OK_GUEST)
        for wasm in (guests.FORBIDDEN_IMPORT, b"not wasm"):
            with pytest.raises(grpc.RpcError) as exc:
                h.deploy("ok", wasm)
            assert code_of(exc) == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as exc:
            h.genome("ok", (1.0, math.nan), "g-nan")
        assert code_of(exc) == grpc.StatusCode.INVALID_ARGUMENT
        assert "genome.parameters[1]" in details_of(exc)
        listed = h.stub.ListVersions(execution_pb2.ListVersionsRequest(module_name="ok"))
        assert [d.version for d in listed.deployments] == [v1.version] == [1]
        assert listed.active_version == 1


def test_genome_deploy_changes_kernel_kpis() -> None:
    """The closed loop in miniature: deploying a better genome raises the KPI."""
    instance = generate_instance(9, 150).encode()
    limits = execution_pb2.ExecutionLimits(
        fuel=2_000_000_000, memory_bytes=64 * 1024 * 1024, timeout_ms=10_000
    )
    with running() as h:
        h.deploy("packer", kernel_wasm_bytes())

        def kpi_of_one_task() -> common_pb2.KpiReport:
            task = h.submit("packer", input=instance, agent_id="agent-1", limits=limits)
            rec = h.wait_terminal(task.task_id)
            assert rec.status == common_pb2.TASK_STATUS_SUCCEEDED, rec.last_error
            return rec.last_kpi

        h.genome("packer", BAD_GENOME, "g-bad")
        before = kpi_of_one_task()
        h.genome("packer", GOOD_GENOME, "g-good")
        after = kpi_of_one_task()
    assert before.status == after.status == common_pb2.RUN_OUTCOME_SUCCESS
    assert after.metrics["quality"] > before.metrics["quality"] + 0.2
    assert after.fuel_consumed > before.fuel_consumed
    assert (before.module_version, after.module_version) == (2, 3)
    assert (before.genome_id, after.genome_id) == ("g-bad", "g-good")
    assert after.agent_id == "agent-1" and after.metrics["attempt"] == 1.0


def expected_quality(genome: tuple[float, ...], instance: bytes) -> float:
    with Sandbox(tick_ms=5.0) as sandbox:
        result = sandbox.run(sandbox.compile(kernel_wasm_bytes()), genome, instance)
    assert result.ok and result.output is not None, result.message
    return result.output.metrics["quality"]


def test_versions_genomes_rollback_and_optimistic_concurrency() -> None:
    with running() as h:
        kernel = h.deploy("packer", kernel_wasm_bytes())
        bad = h.genome("packer", BAD_GENOME, "g-bad")
        good = h.genome("packer", GOOD_GENOME, "g-good")
        assert (bad.version, bad.previous_version, good.version, good.previous_version) == (
            2,
            1,
            3,
            2,
        )
        assert good.module_sha256 == kernel.module_sha256 and good.verdict_id == kernel.verdict_id
        assert list(good.genome.parameters) == list(GOOD_GENOME) and good.genome.id == "g-good"

        listed = h.stub.ListVersions(execution_pb2.ListVersionsRequest(module_name="packer"))
        assert [d.version for d in listed.deployments] == [3, 2, 1]
        assert listed.active_version == 3
        assert [d.active for d in listed.deployments] == [True, False, False]
        two = h.stub.ListVersions(execution_pb2.ListVersionsRequest(module_name="packer", limit=2))
        assert [d.version for d in two.deployments] == [3, 2]

        back = h.stub.RollbackGenome(execution_pb2.RollbackGenomeRequest(module_name="packer"))
        assert back.version == 2 and back.active and back.previous_version == 3
        again = h.stub.RollbackGenome(execution_pb2.RollbackGenomeRequest(module_name="packer"))
        assert again.version == 3 and again.previous_version == 2  # undoes the rollback
        first = h.stub.RollbackGenome(
            execution_pb2.RollbackGenomeRequest(module_name="packer", to_version=1)
        )
        assert first.version == 1 and first.previous_version == 3
        with pytest.raises(grpc.RpcError) as exc:
            h.stub.RollbackGenome(
                execution_pb2.RollbackGenomeRequest(module_name="packer", to_version=9)
            )
        assert code_of(exc) == grpc.StatusCode.NOT_FOUND

        # Optimistic concurrency: only swaps when the expected version is still active.
        with pytest.raises(grpc.RpcError) as exc:
            h.genome("packer", GOOD_GENOME, "g-x", expected_active_version=3)
        assert code_of(exc) == grpc.StatusCode.ABORTED
        ok = h.genome("packer", GOOD_GENOME, "g-good-2", expected_active_version=1)
        assert ok.version == 4 and ok.previous_version == 1

        # A stored (inactive) module can be named by digest in DeployGenome.
        marker = guests.marker_guest(5.0)
        stored = h.deploy("packer", marker, activate=False)
        assert stored.version == 5 and not stored.active
        assert (
            h.stub.ListVersions(
                execution_pb2.ListVersionsRequest(module_name="packer")
            ).active_version
            == 4
        )
        swapped = h.genome("packer", (), "g-marker", module_sha256=stored.module_sha256)
        assert swapped.version == 6 and swapped.module_sha256 == stored.module_sha256
        rec = h.wait_terminal(h.submit("packer").task_id)
        assert rec.module_version == 6 and rec.last_kpi.metrics["marker"] == 5.0
        with pytest.raises(grpc.RpcError) as exc:
            h.genome("packer", (), "g", module_sha256="0" * 64)
        assert code_of(exc) == grpc.StatusCode.NOT_FOUND


def test_slot_without_active_deployment() -> None:
    with running() as h:
        stored = h.deploy("idle", guests.marker_guest(3.0), activate=False)
        with pytest.raises(grpc.RpcError) as exc:
            h.genome("idle", (), "g")
        assert code_of(exc) == grpc.StatusCode.FAILED_PRECONDITION
        with pytest.raises(grpc.RpcError) as exc:
            h.submit("idle")
        assert code_of(exc) == grpc.StatusCode.FAILED_PRECONDITION
        with pytest.raises(grpc.RpcError) as exc:
            h.stub.RollbackGenome(execution_pb2.RollbackGenomeRequest(module_name="idle"))
        assert code_of(exc) == grpc.StatusCode.FAILED_PRECONDITION
        pinned = h.wait_terminal(h.submit("idle", module_version=stored.version).task_id)
        assert pinned.status == common_pb2.TASK_STATUS_SUCCEEDED
        assert pinned.last_kpi.metrics["marker"] == 3.0
        for call in (
            lambda: h.submit("nowhere"),
            lambda: h.genome("nowhere", (), "g"),
            lambda: h.submit("idle", module_version=42),
        ):
            with pytest.raises(grpc.RpcError) as exc:
                call()
            assert code_of(exc) == grpc.StatusCode.NOT_FOUND


def test_running_task_finishes_on_the_deployment_it_started_with() -> None:
    with running() as h:
        h.deploy("slot", slow_marker(1.0))
        fuel = execution_pb2.ExecutionLimits(fuel=2_000_000_000)
        first = h.submit("slot", limits=fuel)
        end = time.monotonic() + 5
        while (
            h.stub.GetTask(execution_pb2.GetTaskRequest(task_id=first.task_id)).status
            != common_pb2.TASK_STATUS_RUNNING
        ):
            assert time.monotonic() < end, "task never started"
        swap = h.deploy("slot", slow_marker(2.0))  # swap while the first task runs
        second = h.submit("slot", limits=fuel)
        one, two = h.wait_terminal(first.task_id), h.wait_terminal(second.task_id)
        # The first task was still running when v2 became active ...
        assert one.finished_at.ToNanoseconds() > swap.deployed_at.ToNanoseconds()
        # ... and finished on v1 all the same, and its KPI report says so.
        assert (one.module_version, one.last_kpi.metrics["marker"]) == (1, 1.0)
        assert (two.module_version, two.last_kpi.metrics["marker"]) == (2, 2.0)
        assert (one.last_kpi.module_version, two.last_kpi.module_version) == (1, 2)


def test_genome_hot_swap_while_tasks_run() -> None:
    instance = generate_instance(11, 24).encode()
    quality = {
        "g-bad": expected_quality(BAD_GENOME, instance),
        "g-good": expected_quality(GOOD_GENOME, instance),
    }
    assert quality["g-good"] > quality["g-bad"]
    with running() as h:
        h.deploy("packer", kernel_wasm_bytes())
        h.genome("packer", BAD_GENOME, "g-bad")  # v2
        with collect_kpis(h.stub) as kpis:
            wait_streams(h, 1)
            before = [h.submit("packer", input=instance).task_id for _ in range(30)]
            swap = h.genome("packer", GOOD_GENOME, "g-good")  # v3, while v2 tasks run
            swapped_at = swap.deployed_at.ToNanoseconds()
            after = [h.submit("packer", input=instance).task_id for _ in range(30)]
            pinned = h.submit("packer", input=instance, module_version=2).task_id
            kpis.wait_for(lambda r: len(r) >= 61)
        by_task = kpis.by_task()
        assert len(by_task) == 61 and all(len(v) == 1 for v in by_task.values())
        versions = {}
        for task_id in before + after + [pinned]:
            rec = h.wait_terminal(task_id)
            kpi = by_task[task_id][0]
            assert rec.status == common_pb2.TASK_STATUS_SUCCEEDED
            assert kpi.status == common_pb2.RUN_OUTCOME_SUCCESS
            assert (kpi.genome_id, kpi.module_version) in {("g-bad", 2), ("g-good", 3)}
            assert kpi.metrics["quality"] == quality[kpi.genome_id]  # ran the genome it reports
            assert kpi.module_name == "packer" and kpi.agent_id == "agent-1"
            if rec.started_at.ToNanoseconds() > swapped_at and task_id != pinned:
                assert kpi.module_version == 3, task_id
            versions[task_id] = kpi.module_version
        assert all(versions[t] == 3 for t in after)  # submitted after the swap returned
        assert versions[pinned] == 2
        assert set(versions.values()) == {2, 3}


def test_a_restart_on_the_state_dir_redeploys_every_slot(tmp_path) -> None:
    """--state-dir: a new server on the same directory has every slot's versions, its
    active version and the candidates after it, and rolls back as the old one would."""
    options = dataclasses.replace(FAST_OPTIONS, state_dir=str(tmp_path / "state"))
    with running(options) as h:
        h.deploy("packer", kernel_wasm_bytes())
        h.genome("packer", BAD_GENOME, "g-bad")
        h.genome("packer", GOOD_GENOME, "g-good")  # the canary ...
        h.stub.RollbackGenome(execution_pb2.RollbackGenomeRequest(module_name="packer"))  # ... rolled back
        h.deploy("marker", guests.marker_guest(7.0))
        before = {
            name: h.stub.ListVersions(execution_pb2.ListVersionsRequest(module_name=name))
            for name in ("packer", "marker")
        }
    assert before["packer"].active_version == 2 and len(before["packer"].deployments) == 3

    with running(options) as h:
        after = {
            name: h.stub.ListVersions(execution_pb2.ListVersionsRequest(module_name=name))
            for name in ("packer", "marker")
        }
        assert after == before  # versions, genomes, digests, verdicts, times, previous versions
        rec = h.wait_terminal(h.submit("marker").task_id)
        assert rec.module_version == 1 and rec.last_kpi.metrics["marker"] == 7.0
        again = h.stub.RollbackGenome(execution_pb2.RollbackGenomeRequest(module_name="packer"))
        assert again.version == 3 and again.genome.id == "g-good"  # the canary, from the record
        nxt = h.genome("packer", GOOD_GENOME, "g-next")
        assert nxt.version == 4  # numbering goes on; no version is reused

    # A module whose bytes no longer match the record is refused at start-up.
    digest = before["marker"].deployments[0].module_sha256
    (tmp_path / "state" / "modules" / f"{digest}.wasm").write_bytes(b"\0asm tampered")
    with pytest.raises(ValueError, match=f"{digest}.wasm: bytes hash to"):
        with running(options):
            pass
