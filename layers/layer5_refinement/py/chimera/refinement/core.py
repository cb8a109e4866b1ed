"""Typed access to the refinement Rust core through its WASM module.

The decision logic runs in the core (``layers/layer5_refinement/rust``):
Welch's t-test (Welch–Satterthwaite df, p-value from the Student-t CDF via
the regularized incomplete beta), the paired t-test and the Wilcoxon
signed-rank test, Cohen's d and Hedges' g with its interval, the always-valid
mSPRT of a sequential paired design, the sample size per arm for a target
power, the A/B decision rule by design (no decision before the planned size,
or at the sequential test's first crossing) with its guardrail veto, z-score /
EWMA anomalies, the trend, and the evolution trigger. See the core's module
docs for the exact rules.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chimera.refinement import artifacts
from chimera.wasm import CoreError, CoreModule, Reader, Writer

__all__ = [
    "STATUS_BAD_REQUEST",
    "STATUS_OUT_OF_RANGE",
    "AnomalyHit",
    "ArmSummary",
    "CoreError",
    "Decision",
    "Design",
    "Direction",
    "GuardrailCheck",
    "GuardrailSeries",
    "MeanTest",
    "PatternStats",
    "RefinementCore",
    "SequentialTest",
    "SignedRank",
    "TrendFit",
    "TriggerRule",
    "TriggerVerdict",
    "Verdict",
]

OPERATIONS = (
    "refinement_decide",
    "refinement_sample_size",
    "refinement_patterns",
    "refinement_should_evolve",
)
STATUS_BAD_REQUEST = 1
STATUS_OUT_OF_RANGE = 2


class Direction(enum.IntEnum):
    """Better direction of a metric (the values of ``chimera.v1.OptimizationDirection``)."""

    MINIMIZE = 1
    MAXIMIZE = 2


class Decision(enum.IntEnum):
    """The A/B rule's verdict (the values of ``chimera.v1.ExperimentDecision``)."""

    PENDING = 1
    PROMOTE = 2
    ROLL_BACK = 3
    INCONCLUSIVE = 4
    VETOED = 5


class Design(enum.IntEnum):
    """How the arms are measured (the values of ``chimera.v1.ExperimentDesign``)."""

    UNPAIRED = 1
    PAIRED = 2
    PAIRED_SEQUENTIAL = 3


@dataclass(frozen=True)
class ArmSummary:
    count: int
    mean: float
    variance: float


@dataclass(frozen=True)
class MeanTest:
    """Welch's or the paired t-test of treatment against control, with effect sizes."""

    control: ArmSummary
    treatment: ArmSummary
    t_statistic: float
    degrees_of_freedom: float
    p_value: float
    #: Cohen's d (unpaired) or d_z (paired).
    cohen_d: float
    hedges_g: float
    g_ci_low: float
    g_ci_high: float
    #: Treatment minus control, with its (1 - alpha) t interval.
    difference: float
    difference_ci_low: float
    difference_ci_high: float


@dataclass(frozen=True)
class SignedRank:
    """The Wilcoxon signed-rank test of the per-unit differences."""

    nonzero: int
    w_plus: float
    p_value: float
    exact: bool


@dataclass(frozen=True)
class SequentialTest:
    """Where the always-valid mSPRT stands (at ``Verdict.samples_used`` pairs)."""

    crossed: bool
    log_likelihood_ratio: float
    always_valid_p: float


@dataclass(frozen=True)
class GuardrailSeries:
    """A guardrail metric's values, one per observation of each arm (same order)."""

    direction: Direction
    max_regression: float
    control: Sequence[float]
    treatment: Sequence[float]


@dataclass(frozen=True)
class GuardrailCheck:
    control_mean: float
    treatment_mean: float
    regression: float
    breached: bool


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    samples_used: int
    #: None while an arm has fewer than 2 observations (pairs).
    test: MeanTest | None
    #: Paired designs only.
    signed_rank: SignedRank | None
    #: The sequential design only.
    sequential: SequentialTest | None
    guardrails: tuple[GuardrailCheck, ...]


@dataclass(frozen=True)
class AnomalyHit:
    index: int
    #: 1 z-score, 2 EWMA (the values of ``chimera.v1.AnomalyMethod``).
    method: int
    expected: float
    score: float


@dataclass(frozen=True)
class TrendFit:
    slope: float
    r_squared: float
    p_value: float
    #: 1 flat, 2 rising, 3 falling (the values of ``chimera.v1.TrendDirection``).
    direction: int


@dataclass(frozen=True)
class PatternStats:
    mean: float
    stddev: float
    anomalies: tuple[AnomalyHit, ...]
    trend: TrendFit | None


@dataclass(frozen=True)
class TriggerRule:
    """Thresholds of the evolution trigger (see the core's ``trigger`` module)."""

    direction: Direction
    window: int = 50
    max_degradation: float = 0.1
    max_anomaly_rate: float = 0.05
    max_failure_rate: float = 0.1
    z_threshold: float = 3.0
    plateau: bool = False
    min_improvement: float = 0.01
    plateau_alpha: float = 0.05


@dataclass(frozen=True)
class TriggerVerdict:
    #: The values of ``chimera.v1.EvolutionTrigger``.
    trigger: int
    reason: str
    current_mean: float
    baseline_mean: float
    degradation: float
    anomaly_rate: float
    failure_rate: float
    sample_count: int
    p_value: float

    @property
    def should_evolve(self) -> bool:
        return self.trigger not in (1, 2)


def _samples(w: Writer, values: Sequence[float]) -> None:
    w.u32(len(values))
    for v in values:
        w.f64(v)


def _summary(r: Reader) -> ArmSummary:
    return ArmSummary(r.u32(), r.f64(), r.f64())


class RefinementCore:
    """The compiled refinement core; thread-safe (each call gets its own instance)."""

    def __init__(self, module: CoreModule) -> None:
        self._module = module

    @classmethod
    def load(cls, path: Path | None = None) -> RefinementCore:
        wasm = Path(path) if path is not None else artifacts.locate(artifacts.CORE_WASM)
        return cls(CoreModule.from_file(wasm, OPERATIONS))

    def decide(
        self,
        control: Sequence[float],
        treatment: Sequence[float],
        *,
        design: Design,
        planned_per_arm: int,
        alpha: float,
        direction: Direction,
        mixture_scale: float = 0.5,
        guardrails: Sequence[GuardrailSeries] = (),
    ) -> Verdict:
        """The A/B rule on the observations so far: recording order (unpaired),
        or pair ``i`` at index ``i`` of both arms, in completion order (paired)."""
        w = Writer().u8(int(design)).u32(planned_per_arm).f64(alpha).u8(int(direction))
        w.f64(mixture_scale)
        _samples(w, control)
        _samples(w, treatment)
        w.u32(len(guardrails))
        for g in guardrails:
            w.u8(int(g.direction)).f64(g.max_regression)
            _samples(w, g.control)
            _samples(w, g.treatment)
        r = Reader(self._module.call("refinement_decide", w.to_bytes()))
        decision, used = Decision(r.u8()), r.u32()
        test = None
        if r.u8():
            c, t = _summary(r), _summary(r)
            test = MeanTest(c, t, *(r.f64() for _ in range(10)))
        signed_rank = SignedRank(r.u32(), r.f64(), r.f64(), bool(r.u8())) if r.u8() else None
        sequential = SequentialTest(bool(r.u8()), r.f64(), r.f64()) if r.u8() else None
        checks = tuple(
            GuardrailCheck(r.f64(), r.f64(), r.f64(), bool(r.u8())) for _ in range(r.u32())
        )
        r.finish()
        return Verdict(decision, used, test, signed_rank, sequential, checks)

    def sample_size(self, *, alpha: float, power: float, effect: float) -> int:
        """Observations per arm for a two-sided test to detect ``effect`` (Cohen's d)."""
        w = Writer().f64(alpha).f64(power).f64(effect)
        r = Reader(self._module.call("refinement_sample_size", w.to_bytes()))
        n = r.u64()
        r.finish()
        return n

    def patterns(
        self,
        times: Sequence[float],
        values: Sequence[float],
        *,
        z_threshold: float,
        ewma_alpha: float,
        trend_alpha: float = 0.05,
    ) -> PatternStats:
        """Mean, stddev, z-score and EWMA anomalies (highest score first) and the trend."""
        w = Writer().f64(z_threshold).f64(ewma_alpha).f64(trend_alpha).u32(len(values))
        for t, v in zip(times, values, strict=True):
            w.f64(t).f64(v)
        r = Reader(self._module.call("refinement_patterns", w.to_bytes()))
        mean, stddev = r.f64(), r.f64()
        hits = tuple(AnomalyHit(r.u32(), r.u8(), r.f64(), r.f64()) for _ in range(r.u32()))
        trend = TrendFit(r.f64(), r.f64(), r.f64(), r.u8()) if r.u8() else None
        r.finish()
        return PatternStats(mean, stddev, hits, trend)

    def should_evolve(
        self, points: Sequence[tuple[float, bool]], rule: TriggerRule
    ) -> TriggerVerdict:
        """The evolution trigger over ``(value, succeeded)`` points, oldest first."""
        w = Writer().u8(int(rule.direction)).u32(rule.window)
        w.f64(rule.max_degradation).f64(rule.max_anomaly_rate).f64(rule.max_failure_rate)
        w.f64(rule.z_threshold).u8(int(rule.plateau)).f64(rule.min_improvement)
        w.f64(rule.plateau_alpha).u32(len(points))
        for value, ok in points:
            w.f64(value).u8(int(ok))
        r = Reader(self._module.call("refinement_should_evolve", w.to_bytes()))
        verdict = TriggerVerdict(
            r.u8(), r.string(), r.f64(), r.f64(), r.f64(), r.f64(), r.f64(), r.u32(), r.f64()
        )
        r.finish()
        return verdict
