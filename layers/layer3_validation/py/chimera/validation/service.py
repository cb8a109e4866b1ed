"""ValidationService: plan and module verdicts, kept for GetVerdict.

* ``ValidatePlan`` applies the plan rules (``plan_rules``) and the dependency
  checks of the Rust core; the subject digest is the SHA-256 (computed by the
  core) of the plan's deterministic protobuf serialization. Risk score: the
  highest ``probability x impact`` among the plan's risks or the findings'
  score, whichever is larger; factors name the top plan risks.
* ``ValidateModule`` parses the module in the Rust core (WASM sections,
  LEB128) and applies the module policy plus the request's required exports
  and expected digest; the subject digest is the SHA-256 of the bytes.
* Every result is stored under its ``verdict_id``; layer 4 fetches it with
  ``GetVerdict`` and admits a module only when the verdict is valid and its
  ``subject_sha256`` equals the digest of the bytes it is given.

A subject that breaks policy is answered normally with ``is_valid = false``;
only malformed requests are INVALID_ARGUMENT.
"""

from __future__ import annotations

import time

import grpc

from chimera.framework import MetricsRegistry
from chimera.framework.errors import InvalidArgument, NotFound
from chimera.validation.core import ValidationCore
from chimera.validation.plan_rules import check_plan
from chimera.validation.policy import Policy
from chimera.validation.results import assemble, findings_score
from chimera.validation.verdicts import VerdictStore
from chimera.v1 import validation_pb2, validation_pb2_grpc

__all__ = ["SERVICE_NAME", "ValidationServicer"]

SERVICE_NAME = "chimera.v1.ValidationService"


class ValidationServicer(validation_pb2_grpc.ValidationServiceServicer):
    """The gRPC face of the validation rules and the verdict store."""

    def __init__(
        self,
        policy: Policy,
        core: ValidationCore,
        store: VerdictStore | None = None,
        metrics: MetricsRegistry | None = None,
    ) -> None:
        self._policy = policy
        self._core = core
        self._store = store or VerdictStore(policy.verdicts.retention, policy.verdicts.ttl_seconds)
        registry = metrics or MetricsRegistry()
        self._verdicts = registry.counter(
            "validation_verdicts_total", "Verdicts by subject and outcome.", ("subject", "valid")
        )

    @property
    def store(self) -> VerdictStore:
        return self._store

    def ValidatePlan(
        self, request: validation_pb2.ValidatePlanRequest, context: grpc.ServicerContext
    ) -> validation_pb2.ValidationResult:
        started = time.perf_counter()
        plan = request.plan
        findings = check_plan(plan, self._policy.plan, self._core)
        risks = sorted(plan.risks, key=lambda r: r.probability * r.impact, reverse=True)
        plan_score = risks[0].probability * risks[0].impact if risks else 0.0
        factors = [
            f"{r.id}: {r.description} (score {r.probability * r.impact:g})" for r in risks[:3]
        ]
        critical = sum(1 for f in findings if f.severity == 3)
        if critical:
            factors.append(f"{critical} critical findings")
        result = assemble(
            operation_type=validation_pb2.OPERATION_TYPE_PLAN,
            subject_id=plan.id,
            subject_sha256=self._core.sha256(plan.SerializeToString(deterministic=True)),
            findings=findings,
            risk_score=max(plan_score, findings_score(findings)),
            risk_factors=factors,
            started=started,
        )
        return self._keep(result, request.context, "plan")

    def ValidateModule(
        self, request: validation_pb2.ValidateModuleRequest, context: grpc.ServicerContext
    ) -> validation_pb2.ValidationResult:
        started = time.perf_counter()
        for i, name in enumerate(request.required_exports):
            if not name:
                raise InvalidArgument(f"required_exports[{i}]", "must not be empty")
        report = self._core.vet_module(
            request.wasm,
            self._policy.module,
            extra_exports=request.required_exports,
            expected_sha256=request.expected_sha256,
        )
        facts = validation_pb2.ModuleFacts(
            size_bytes=report.size_bytes,
            imports=[f"{module}.{name}" for module, name, _ in report.imports],
            exports=[name for name, kind, _ in report.exports if kind == "func"],
        )
        if report.memories:
            first = report.memories[0]
            facts.memory_min_pages = min(first.min_pages, 0xFFFFFFFF)
            if first.max_pages is not None:
                facts.memory_max_pages = min(first.max_pages, 0xFFFFFFFF)
        factors = [f.message for f in report.findings[:3]]
        result = assemble(
            operation_type=validation_pb2.OPERATION_TYPE_MODULE,
            subject_id=request.module_name,
            subject_sha256=report.sha256,
            findings=report.findings,
            risk_score=report.risk_score,
            risk_factors=factors,
            started=started,
            module_facts=facts,
        )
        return self._keep(result, request.context, "module")

    def GetVerdict(
        self, request: validation_pb2.GetVerdictRequest, context: grpc.ServicerContext
    ) -> validation_pb2.ValidationResult:
        result = self._store.get(request.verdict_id)
        if result is None:
            raise NotFound(f"verdict {request.verdict_id!r} is unknown or expired")
        return result

    def _keep(
        self, result: validation_pb2.ValidationResult, context: object, subject: str
    ) -> validation_pb2.ValidationResult:
        self._store.put(result, dict(context))  # type: ignore[call-overload]
        self._verdicts.labels(subject=subject, valid=str(result.is_valid).lower()).inc()
        return result
