"""The plan operations layers 3 and 4 implement, as gRPC calls.

:class:`ModuleOperations` carries one WASM module through a plan:
``validate_module`` (layer 3 ``ValidateModule``, digest and required exports
checked), ``deploy_module`` (layer 4 ``DeployModule`` with that verdict; the
3->4 gate asks layer 3 for it) and, once deployed, ``run_module`` (one task on
an instance, waited for) and ``analyze_kpis`` (the last run's KPI report).
Each returns the RPC's reply, so callers assert on what the layers answered.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from chimera.plans.executor import Operation, PlanRun
from chimera.v1 import (
    common_pb2,
    execution_pb2,
    execution_pb2_grpc,
    planning_pb2,
    validation_pb2,
    validation_pb2_grpc,
)

__all__ = ["ModuleFailure", "ModuleOperations"]

_TERMINAL = frozenset(
    {
        common_pb2.TASK_STATUS_SUCCEEDED,
        common_pb2.TASK_STATUS_DEAD_LETTERED,
        common_pb2.TASK_STATUS_CANCELLED,
    }
)


class ModuleFailure(RuntimeError):
    """A layer refused or failed a step; the message names the task and the reason."""


@dataclass
class ModuleOperations:
    """Operations over one module, for :class:`chimera.plans.executor.PlanExecutor`.

    ``instance`` makes the input of a ``run_module`` task; ``default_module``
    names the module when a task's parameters do not.
    """

    validation: validation_pb2_grpc.ValidationServiceStub
    execution: execution_pb2_grpc.ExecutionServiceStub
    wasm: bytes
    instance: Callable[[planning_pb2.Task], bytes]
    required_exports: Sequence[str] = ("chimera_run", "chimera_alloc")
    default_module: str = "packer"
    context: Mapping[str, str] | None = None
    timeout_s: float = 30.0

    def mapping(self) -> dict[str, Operation]:
        return {
            "validate_module": self.validate_module,
            "deploy_module": self.deploy_module,
            "run_module": self.run_module,
            "analyze_kpis": self.analyze_kpis,
        }

    def module_name(self, task: planning_pb2.Task) -> str:
        return task.parameters.get("module_name", self.default_module)

    def validate_module(
        self, task: planning_pb2.Task, run: PlanRun
    ) -> validation_pb2.ValidationResult:
        verdict = self.validation.ValidateModule(
            validation_pb2.ValidateModuleRequest(
                module_name=self.module_name(task),
                wasm=self.wasm,
                expected_sha256=hashlib.sha256(self.wasm).hexdigest(),
                required_exports=list(self.required_exports),
                context=dict(self.context or {}, plan_id=run.plan_id, task_id=task.id),
            ),
            timeout=self.timeout_s,
        )
        if not verdict.is_valid:
            findings = "; ".join(f"{f.rule}: {f.message}" for f in verdict.findings)
            raise ModuleFailure(f"task {task.id!r}: layer 3 rejects the module: {findings}")
        return verdict

    def deploy_module(self, task: planning_pb2.Task, run: PlanRun) -> execution_pb2.Deployment:
        verdict: validation_pb2.ValidationResult = run.last("validate_module")
        deployment = self.execution.DeployModule(
            execution_pb2.DeployModuleRequest(
                module_name=self.module_name(task),
                wasm=self.wasm,
                verdict_id=verdict.verdict_id,
                activate=True,
            ),
            timeout=self.timeout_s,
        )
        if deployment.module_sha256 != verdict.subject_sha256:
            raise ModuleFailure(f"task {task.id!r}: the deployed SHA-256 is not the validated one")
        return deployment

    def run_module(self, task: planning_pb2.Task, run: PlanRun) -> execution_pb2.TaskRecord:
        handle = self.execution.SubmitTask(
            execution_pb2.TaskSpec(
                module_name=self.module_name(task),
                input=self.instance(task),
                priority=task.priority,
                labels={"plan_id": run.plan_id, "task_id": task.id},
            ),
            timeout=self.timeout_s,
        )
        record = self._wait(handle.task_id)
        if record.status != common_pb2.TASK_STATUS_SUCCEEDED:
            raise ModuleFailure(f"task {task.id!r}: execution ended {record.status}: {record.last_error}")
        return record

    def analyze_kpis(self, task: planning_pb2.Task, run: PlanRun) -> common_pb2.KpiReport:
        record: execution_pb2.TaskRecord = run.last("run_module")
        kpi = record.last_kpi
        if kpi.status != common_pb2.RUN_OUTCOME_SUCCESS:
            raise ModuleFailure(f"task {task.id!r}: the last run's KPI reports {kpi.status}")
        return kpi

    def _wait(self, task_id: str) -> execution_pb2.TaskRecord:
        deadline = time.monotonic() + self.timeout_s
        while True:
            record = self.execution.GetTask(
                execution_pb2.GetTaskRequest(task_id=task_id), timeout=self.timeout_s
            )
            if record.status in _TERMINAL:
                return record
            if time.monotonic() > deadline:
                raise ModuleFailure(f"execution task {task_id} not finished after {self.timeout_s} s")
            time.sleep(0.02)
