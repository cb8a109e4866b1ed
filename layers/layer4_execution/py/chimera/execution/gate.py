"""The 3 -> 4 gate: a module runs only with a valid layer-3 verdict for its exact bytes.

``DeployModule`` asks a :class:`ModuleGate` before storing a module.
:class:`VerdictGate` looks the verdict up with ``ValidationService.GetVerdict``
on the configured validation target (through ``ChimeraClient``: deadline,
retries of this idempotent read on UNAVAILABLE, circuit breaker) and admits
the module only when the verdict is valid, is not a plan verdict, and its
``subject_sha256`` equals the SHA-256 of the bytes being deployed. Anything
else is a refusal (FAILED_PRECONDITION); an unreachable validation service is
UNAVAILABLE, so callers know a retry may succeed.

:class:`TrustingGate` admits everything. It exists for standalone use without
layer 3 (a laptop demo), is only built from an explicit flag, and logs a
warning on every module it lets through.
"""

from __future__ import annotations

import logging
from typing import Protocol

import grpc

from chimera.framework import (
    ChimeraClient,
    CircuitOpenError,
    ClientConfig,
    FailedPrecondition,
    Unavailable,
)
from chimera.v1 import validation_pb2, validation_pb2_grpc

__all__ = ["ModuleGate", "TrustingGate", "VerdictGate"]

_log = logging.getLogger("chimera.execution.gate")

GET_VERDICT = "chimera.v1.ValidationService/GetVerdict"


class ModuleGate(Protocol):
    """Decides whether a module may be deployed."""

    description: str

    def admit(self, module_name: str, sha256: str, verdict_id: str) -> None:
        """Returns when admitted; raises FailedPrecondition or Unavailable otherwise."""

    def close(self) -> None:
        """Releases connections; the gate is not used afterwards."""


class VerdictGate:
    """Admits a module only with a valid layer-3 verdict for exactly its digest."""

    def __init__(
        self,
        target: str,
        *,
        client: ChimeraClient | None = None,
        timeout_seconds: float = 5.0,
    ) -> None:
        self.target = target
        self.description = f"layer-3 verdicts from ValidationService at {target}"
        self._own_client = client is None
        self._client = client or ChimeraClient(
            ClientConfig(
                default_deadline_seconds=timeout_seconds, idempotent_methods=(GET_VERDICT,)
            )
        )
        self._stub = self._client.stub(validation_pb2_grpc.ValidationServiceStub, target)

    def admit(self, module_name: str, sha256: str, verdict_id: str) -> None:
        try:
            verdict = self._stub.GetVerdict(validation_pb2.GetVerdictRequest(verdict_id=verdict_id))
        except CircuitOpenError:
            raise Unavailable(
                f"validation service at {self.target} is failing (circuit open); retry later"
            ) from None
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
            if code == grpc.StatusCode.NOT_FOUND:
                raise FailedPrecondition(
                    f"verdict {verdict_id!r} is unknown to the validation service "
                    "(validate the module with ValidationService.ValidateModule first)"
                ) from None
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise Unavailable(
                    f"validation service at {self.target} is unreachable ({code.name})"
                ) from None
            details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
            raise FailedPrecondition(
                f"verdict {verdict_id!r} could not be checked: {code.name}: {details}"
            ) from None
        check_verdict(verdict, verdict_id, sha256)

    def close(self) -> None:
        if self._own_client:
            self._client.close()


def check_verdict(verdict: validation_pb2.ValidationResult, verdict_id: str, sha256: str) -> None:
    """The admission rule itself; raises FailedPrecondition naming what does not match."""
    if verdict.operation_type == validation_pb2.OPERATION_TYPE_PLAN:
        raise FailedPrecondition(f"verdict {verdict_id!r} is a plan verdict, not a module verdict")
    if not verdict.is_valid:
        rules = ", ".join(f.rule for f in verdict.findings[:5]) or "no findings listed"
        raise FailedPrecondition(f"verdict {verdict_id!r} says the module is not valid ({rules})")
    if verdict.subject_sha256 != sha256:
        raise FailedPrecondition(
            f"verdict {verdict_id!r} is for SHA-256 {verdict.subject_sha256 or '(none)'}, "
            f"but the deployed bytes have SHA-256 {sha256}"
        )


class TrustingGate:
    """Admits every module without a verdict. Standalone use only; never the default."""

    description = "NONE: --trust-unvalidated-modules (modules are NOT checked by layer 3)"

    def admit(self, module_name: str, sha256: str, verdict_id: str) -> None:
        _log.warning(
            "UNVALIDATED MODULE ADMITTED: %s (sha256 %s, verdict_id %r not checked) "
            "because --trust-unvalidated-modules is set",
            module_name,
            sha256,
            verdict_id,
        )

    def close(self) -> None:
        pass
