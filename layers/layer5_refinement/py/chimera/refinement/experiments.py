"""A/B experiments: their design, settings, observations and the decision rule's verdict.

The planned size per arm is either given (``min_samples_per_arm``) or
computed by the core from the minimum detectable effect, alpha and power.
Unpaired observations are kept in recording order because the rule tests
exactly the first ``planned`` of each arm (see ``decision.rs``): that is what
makes repeated analysis safe. Paired observations are keyed by unit; a pair
counts from the moment its second arm arrives, and the rule takes pairs in
that completion order (the first ``planned`` for a fixed design, pair by pair
for the sequential one). The statistics all live in the core.

With an :class:`ExperimentJournal` (``--state-dir``) every creation and
observation is journalled before it is answered, and a store built on the
same journal replays them in order, so it starts with every experiment as it
was: arms, units, pairs and their completion order.
"""

from __future__ import annotations

import itertools
import math
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
    Design,
    Direction,
    GuardrailSeries,
    RefinementCore,
    Verdict,
)
from chimera.v1 import refinement_pb2

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_MIN_SAMPLES",
    "DEFAULT_MIXTURE_SCALE",
    "DEFAULT_POWER",
    "ExperimentStore",
]

DEFAULT_ALPHA = 0.05
DEFAULT_MIN_SAMPLES = 30
DEFAULT_POWER = 0.8
#: τ of the sequential test's mixture when neither it nor a minimum detectable
#: effect is given: a standardized effect of 0.5 ("medium", Cohen 1988).
DEFAULT_MIXTURE_SCALE = 0.5
#: Observations one arm keeps; beyond it RecordObservation is refused.
MAX_OBSERVATIONS_PER_ARM = 1_000_000
_PAIRED = (Design.PAIRED, Design.PAIRED_SEQUENTIAL)


@dataclass(frozen=True)
class _Observation:
    value: float
    #: Guardrail values in the experiment's guardrail order.
    guardrails: tuple[float, ...]


@dataclass
class _Experiment:
    proto: refinement_pb2.Experiment
    #: Per arm, every observation in recording order.
    arms: dict[str, list[_Observation]] = field(default_factory=dict)
    #: Paired designs: per arm, the observation of each unit.
    units: dict[str, dict[str, _Observation]] = field(default_factory=dict)
    #: Paired designs: units observed in both arms, in the order the pairs completed.
    pairs: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def empty(cls, proto: refinement_pb2.Experiment) -> _Experiment:
        arms = (proto.control.name, proto.treatment.name)
        return cls(proto, {a: [] for a in arms}, {a: {} for a in arms})

    @property
    def paired(self) -> bool:
        return self.proto.design in _PAIRED

    def add(self, arm_name: str, unit: str, observation: _Observation) -> None:
        """Records an admitted observation (see :func:`_admit`); the caller holds ``lock``."""
        self.arms[arm_name].append(observation)
        if self.paired:
            self.units[arm_name][unit] = observation
            control, treatment = self.proto.control.name, self.proto.treatment.name
            other = treatment if arm_name == control else control
            if unit in self.units[other]:
                self.pairs.append(unit)

    def series(self) -> tuple[list[_Observation], list[_Observation]]:
        """The observations the rule sees, control then treatment."""
        control, treatment = self.proto.control.name, self.proto.treatment.name
        if not self.paired:
            return list(self.arms[control]), list(self.arms[treatment])
        return (
            [self.units[control][u] for u in self.pairs],
            [self.units[treatment][u] for u in self.pairs],
        )


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
            self._replay(journal)

    def _replay(self, journal: ExperimentJournal) -> None:
        """Re-applies the journal's events in their order (each was admitted when recorded)."""
        for event in journal.replay():
            if isinstance(event, refinement_pb2.Experiment):
                self._experiments[event.id] = _Experiment.empty(event)
            else:
                exp = self._experiments[event.experiment_id]
                exp.add(event.variant_name, event.unit_id, _admit(exp, event))
        numbers = [int(exp_id.removeprefix("exp-")) for exp_id in self._experiments]
        self._ids = itertools.count(max(numbers, default=0) + 1)

    def create(self, request: refinement_pb2.CreateExperimentRequest) -> refinement_pb2.Experiment:
        control, treatment = request.control.name, request.treatment.name
        if control == treatment:
            raise InvalidArgument("treatment.name", f"must differ from control.name ({control!r})")
        seen: dict[str, int] = {}
        for i, guardrail in enumerate(request.guardrails):
            if guardrail.metric in seen:
                raise InvalidArgument(
                    f"guardrails[{i}].metric",
                    f"repeats guardrails[{seen[guardrail.metric]}].metric",
                )
            seen[guardrail.metric] = i
        sequential = request.design == Design.PAIRED_SEQUENTIAL
        if request.mixture_scale and not sequential:
            raise InvalidArgument(
                "mixture_scale", "applies only to design EXPERIMENT_DESIGN_PAIRED_SEQUENTIAL"
            )
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
        mixture_scale = 0.0
        if sequential:
            mixture_scale = request.mixture_scale or effect or DEFAULT_MIXTURE_SCALE
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
                design=request.design,
                guardrails=request.guardrails,
                mixture_scale=mixture_scale,
            )
            if self._journal is not None:
                self._journal.created(proto)
            entry = self._experiments[exp_id] = _Experiment.empty(proto)
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
            observation = _admit(exp, request)
            if self._journal is not None:
                self._journal.observed(request)
            exp.add(request.variant_name, request.unit_id, observation)
            return self._snapshot(exp)

    def _snapshot(self, exp: _Experiment) -> refinement_pb2.Experiment:
        out = refinement_pb2.Experiment()
        out.CopyFrom(exp.proto)
        out.control_count = len(exp.arms[exp.proto.control.name])
        out.treatment_count = len(exp.arms[exp.proto.treatment.name])
        out.pair_count = len(exp.pairs)
        planned = exp.proto.min_samples_per_arm
        reached = out.pair_count if exp.paired else min(out.control_count, out.treatment_count)
        if reached >= planned:
            out.status = refinement_pb2.EXPERIMENT_STATUS_READY
        return out

    def analyze(self, experiment_id: str) -> refinement_pb2.ExperimentAnalysis:
        exp = self._get(experiment_id)
        with exp.lock:
            p = exp.proto
            control, treatment = exp.series()
        if len(control) < 2 or len(treatment) < 2:
            unit = "complete pairs" if exp.paired else "observations per arm"
            raise FailedPrecondition(
                f"the analysis needs at least 2 {unit} (control {len(control)}, "
                f"treatment {len(treatment)})"
            )
        guardrails = [
            GuardrailSeries(
                Direction(g.direction),
                g.max_regression,
                [o.guardrails[i] for o in control],
                [o.guardrails[i] for o in treatment],
            )
            for i, g in enumerate(p.guardrails)
        ]
        verdict = self._core.decide(
            [o.value for o in control],
            [o.value for o in treatment],
            design=Design(p.design),
            planned_per_arm=p.min_samples_per_arm,
            alpha=p.alpha,
            direction=Direction(p.direction),
            mixture_scale=p.mixture_scale or DEFAULT_MIXTURE_SCALE,
            guardrails=guardrails,
        )
        if self._on_decision is not None:
            self._on_decision(verdict.decision)
        return _analysis(p, verdict)


def _admit(
    exp: _Experiment, request: refinement_pb2.RecordObservationRequest
) -> _Observation:
    """The request's observation, if the experiment may take it (INVALID_ARGUMENT naming
    the field, RESOURCE_EXHAUSTED at the arm's limit); the caller holds ``exp.lock``."""
    arm_name = request.variant_name
    arm = exp.arms.get(arm_name)
    if arm is None:
        raise InvalidArgument("variant_name", f"must be one of {sorted(exp.arms)} of this experiment")
    observation = _Observation(request.value, _guardrail_values(exp.proto, request))
    unit = request.unit_id
    if exp.paired:
        if not unit:
            raise InvalidArgument(
                "unit_id",
                "is required: the experiment's design "
                f"{refinement_pb2.ExperimentDesign.Name(exp.proto.design)} pairs the "
                "arms by unit",
            )
        if unit in exp.units[arm_name]:
            raise InvalidArgument(
                "unit_id", f"unit {unit!r} is already recorded for arm {arm_name!r}"
            )
    if len(arm) >= MAX_OBSERVATIONS_PER_ARM:
        raise ResourceExhausted(f"arm {arm_name!r} holds {len(arm)} observations (the limit)")
    return observation


def _guardrail_values(
    p: refinement_pb2.Experiment, request: refinement_pb2.RecordObservationRequest
) -> tuple[float, ...]:
    """The request's guardrail values in the experiment's guardrail order."""
    given = request.guardrail_values
    names = [g.metric for g in p.guardrails]
    for name in sorted(given):
        if name not in names:
            # The unknown key is not quoted back: map keys have no length limit.
            raise InvalidArgument(
                "guardrail_values", f"names a metric that is not a guardrail of this experiment {names}"
            )
    missing = [n for n in names if n not in given]
    if missing:
        raise InvalidArgument("guardrail_values", f"needs a value for each guardrail; missing {missing}")
    return tuple(given[n] for n in names)


def _arm(name: str, summary: ArmSummary) -> refinement_pb2.ArmStatistics:
    return refinement_pb2.ArmStatistics(
        variant_name=name, count=summary.count, mean=summary.mean, variance=summary.variance
    )


#: The arm to run once the rule has decided.
_KEEP = {Decision.PROMOTE: "treatment", Decision.ROLL_BACK: "control", Decision.VETOED: "control"}


def _analysis(p: refinement_pb2.Experiment, verdict: Verdict) -> refinement_pb2.ExperimentAnalysis:
    test = verdict.test
    assert test is not None  # both arms hold >= 2 observations (pairs)
    sequential = None
    if verdict.sequential is not None:
        s = verdict.sequential
        significant = s.always_valid_p <= p.alpha
        sequential = refinement_pb2.SequentialAnalysis(
            always_valid_p_value=s.always_valid_p,
            log_likelihood_ratio=s.log_likelihood_ratio,
            log_threshold=-math.log(p.alpha),
            stopped=s.crossed,
            mixture_scale=p.mixture_scale,
        )
    else:
        significant = test.p_value < p.alpha
    wilcoxon = None
    if verdict.signed_rank is not None:
        r = verdict.signed_rank
        wilcoxon = refinement_pb2.SignedRankTest(
            nonzero_pairs=r.nonzero, statistic=r.w_plus, p_value=r.p_value, exact=r.exact
        )
    keep = _KEEP.get(verdict.decision)
    return refinement_pb2.ExperimentAnalysis(
        experiment_id=p.id,
        control=_arm(p.control.name, test.control),
        treatment=_arm(p.treatment.name, test.treatment),
        t_statistic=test.t_statistic,
        degrees_of_freedom=test.degrees_of_freedom,
        p_value=test.p_value,
        effect_size=test.cohen_d,
        significant=significant,
        winner=getattr(p, keep).name if keep else "",
        alpha=p.alpha,
        decision=int(verdict.decision),
        hedges_g=test.hedges_g,
        effect_ci_low=test.g_ci_low,
        effect_ci_high=test.g_ci_high,
        samples_used_per_arm=verdict.samples_used,
        design=p.design,
        mean_difference=test.difference,
        mean_difference_ci_low=test.difference_ci_low,
        mean_difference_ci_high=test.difference_ci_high,
        wilcoxon=wilcoxon,
        sequential=sequential,
        guardrails=[
            refinement_pb2.GuardrailResult(
                metric=g.metric,
                control_mean=c.control_mean,
                treatment_mean=c.treatment_mean,
                regression=c.regression,
                max_regression=g.max_regression,
                breached=c.breached,
            )
            for g, c in zip(p.guardrails, verdict.guardrails, strict=True)
        ],
    )
