"""A/B experiments: their settings, observations and the decision rule's verdict.

The planned size per arm is either given (``min_samples_per_arm``) or
computed by the core from the minimum detectable effect, alpha and power.
Observations are kept in recording order because the rule tests exactly
the first ``planned`` of each arm (see ``decision.rs``): that is what makes
repeated analysis safe. With an :class:`ExperimentJournal` (``--state-dir``)
every creation and observation is journalled before it is answered, and a
store built on the same journal starts with every experiment it recorded.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from google.protobuf.timestamp_pb2 import Timestamp

from chimera.framework import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted
from chimera.refinement.experiment_journal import ExperimentJournal
from chimera.refinement.core import (
    ArmSummary,
    CoreError,
    Decision,
    Direction,
    RefinementCore,
    Verdict,
)
from chimera.v1 import refinement_pb2

__all__ = ["DEFAULT_ALPHA", "DEFAULT_MIN_SAMPLES", "DEFAULT_POWER", "ExperimentStore"]

DEFAULT_ALPHA = 0.05
DEFAULT_MIN_SAMPLES = 30
DEFAULT_POWER = 0.8
#: Observations one arm keeps; beyond it RecordObservation is refused.
MAX_OBSERVATIONS_PER_ARM = 1_000_000


@dataclass
class _Experiment:
    proto: refinement_pb2.Experiment
    arms: dict[str, list[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class ExperimentStore:
    """Experiments by id, at most ``capacity`` of them (creation beyond it is refused)."""

    def __init__(
        self,
        core: RefinementCore,
        capacity: int = 10_000,
        on_decision: Callable[[Decision], None] | None = None,
        journal: ExperimentJournal | None = None,
    ) -> None:
        self._core = core
        self._capacity = capacity
        self._experiments: dict[str, _Experiment] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._on_decision = on_decision
        self._journal = journal
        if journal is not None:
            recorded = journal.replay()
            for exp_id, replayed in recorded.items():
                self._experiments[exp_id] = _Experiment(replayed.proto, replayed.arms)
            numbers = [int(exp_id.removeprefix("exp-")) for exp_id in recorded]
            self._ids = itertools.count(max(numbers, default=0) + 1)

    def create(self, request: refinement_pb2.CreateExperimentRequest) -> refinement_pb2.Experiment:
        control, treatment = request.control.name, request.treatment.name
        if control == treatment:
            raise InvalidArgument("treatment.name", f"must differ from control.name ({control!r})")
        alpha = request.alpha or DEFAULT_ALPHA
        planned = request.min_samples_per_arm
        effect = request.minimum_detectable_effect
        power = 0.0
        if planned == 0 and effect > 0:
            power = request.power or DEFAULT_POWER
            try:
                planned = self._core.sample_size(alpha=alpha, power=power, effect=effect)
            except CoreError as err:
                raise InvalidArgument("minimum_detectable_effect", err.message) from err
            if planned > MAX_OBSERVATIONS_PER_ARM:
                raise InvalidArgument(
                    "minimum_detectable_effect",
                    f"needs {planned} observations per arm (limit {MAX_OBSERVATIONS_PER_ARM})",
                )
        elif planned == 0:
            planned = DEFAULT_MIN_SAMPLES
            effect = 0.0
        else:
            effect = 0.0
        planned = max(planned, 2)
        created = Timestamp()
        created.GetCurrentTime()
        with self._lock:
            if len(self._experiments) >= self._capacity:
                raise ResourceExhausted(f"{self._capacity} experiments exist (the store's limit)")
            exp_id = f"exp-{next(self._ids):06d}"
            proto = refinement_pb2.Experiment(
                id=exp_id,
                name=request.name,
                metric=request.metric,
                control=request.control,
                treatment=request.treatment,
                alpha=alpha,
                min_samples_per_arm=planned,
                direction=request.direction,
                status=refinement_pb2.EXPERIMENT_STATUS_RUNNING,
                created_at=created,
                minimum_detectable_effect=effect,
                power=power,
            )
            if self._journal is not None:
                self._journal.created(proto)
            entry = self._experiments[exp_id] = _Experiment(proto, {control: [], treatment: []})
        return self._snapshot(entry)

    def _get(self, experiment_id: str) -> _Experiment:
        with self._lock:
            found = self._experiments.get(experiment_id)
        if found is None:
            raise NotFound(f"experiment {experiment_id!r} does not exist")
        return found

    def record(
        self, request: refinement_pb2.RecordObservationRequest
    ) -> refinement_pb2.Experiment:
        exp = self._get(request.experiment_id)
        with exp.lock:
            arm = exp.arms.get(request.variant_name)
            if arm is None:
                raise InvalidArgument(
                    "variant_name", f"must be one of {sorted(exp.arms)} of this experiment"
                )
            if len(arm) >= MAX_OBSERVATIONS_PER_ARM:
                raise ResourceExhausted(
                    f"arm {request.variant_name!r} holds {len(arm)} observations (the limit)"
                )
            if self._journal is not None:
                self._journal.observed(request.experiment_id, request.variant_name, request.value)
            arm.append(request.value)
            return self._snapshot(exp)

    def _snapshot(self, exp: _Experiment) -> refinement_pb2.Experiment:
        out = refinement_pb2.Experiment()
        out.CopyFrom(exp.proto)
        out.control_count = len(exp.arms[exp.proto.control.name])
        out.treatment_count = len(exp.arms[exp.proto.treatment.name])
        planned = exp.proto.min_samples_per_arm
        if min(out.control_count, out.treatment_count) >= planned:
            out.status = refinement_pb2.EXPERIMENT_STATUS_READY
        return out

    def analyze(self, experiment_id: str) -> refinement_pb2.ExperimentAnalysis:
        exp = self._get(experiment_id)
        with exp.lock:
            p = exp.proto
            control = list(exp.arms[p.control.name])
            treatment = list(exp.arms[p.treatment.name])
        if len(control) < 2 or len(treatment) < 2:
            raise FailedPrecondition(
                f"each arm needs at least 2 observations (control {len(control)}, "
                f"treatment {len(treatment)})"
            )
        verdict = self._core.decide(
            control,
            treatment,
            planned_per_arm=p.min_samples_per_arm,
            alpha=p.alpha,
            direction=Direction(p.direction),
        )
        if self._on_decision is not None:
            self._on_decision(verdict.decision)
        return _analysis(p, verdict)


def _arm(name: str, summary: ArmSummary) -> refinement_pb2.ArmStatistics:
    return refinement_pb2.ArmStatistics(
        variant_name=name, count=summary.count, mean=summary.mean, variance=summary.variance
    )


def _analysis(p: refinement_pb2.Experiment, verdict: Verdict) -> refinement_pb2.ExperimentAnalysis:
    test = verdict.test
    assert test is not None  # both arms hold >= 2 observations
    significant = test.p_value < p.alpha
    winner = ""
    if verdict.decision == Decision.PROMOTE:
        winner = p.treatment.name
    elif verdict.decision == Decision.ROLL_BACK:
        winner = p.control.name
    return refinement_pb2.ExperimentAnalysis(
        experiment_id=p.id,
        control=_arm(p.control.name, test.control),
        treatment=_arm(p.treatment.name, test.treatment),
        t_statistic=test.t_statistic,
        degrees_of_freedom=test.degrees_of_freedom,
        p_value=test.p_value,
        effect_size=test.cohen_d,
        significant=significant,
        winner=winner,
        alpha=p.alpha,
        decision=int(verdict.decision),
        hedges_g=test.hedges_g,
        effect_ci_low=test.g_ci_low,
        effect_ci_high=test.g_ci_high,
        samples_used_per_arm=verdict.samples_used,
    )
