"""The Rust core through its WASM module, checked against scipy.stats."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from chimera.refinement.core import (
    STATUS_BAD_REQUEST,
    STATUS_OUT_OF_RANGE,
    CoreError,
    Decision,
    Design,
    Direction,
    GuardrailSeries,
    RefinementCore,
    TriggerRule,
)

#: Two-sided 3-sd tail of a normal distribution: the z-score rule's expected rate.
NORMAL_3SD_TAIL = 2 * stats.norm.sf(3.0)
#: The EWMA rule divides a Gaussian prediction error by the root of an exponentially
#: weighted mean of squared errors (factor 0.05, anomaly.rs EWMA_SCALE_ALPHA): about a
#: chi-square scale with (2 - 0.05) / 0.05 = 39 degrees of freedom, so the score is about
#: Student t with 39 df, whose 3-sd tail is heavier than the normal's (0.47 % vs 0.27 %).
EWMA_3SD_TAIL = 2 * stats.t.sf(3.0, df=(2 - 0.05) / 0.05)


@pytest.fixture(scope="module")
def core() -> RefinementCore:
    return RefinementCore.load()


def analyse(core: RefinementCore, control: np.ndarray, treatment: np.ndarray, alpha: float = 0.05):
    """Welch's test on all observations (a planned size no arm reaches)."""
    verdict = core.decide(
        list(control), list(treatment), design=Design.UNPAIRED, planned_per_arm=10**9,
        alpha=alpha, direction=Direction.MAXIMIZE,
    )
    assert verdict.decision == Decision.PENDING and verdict.test is not None
    return verdict.test


def test_welch_matches_scipy(core: RefinementCore) -> None:
    rng = np.random.default_rng(7)
    for _ in range(150):
        control = rng.normal(0, rng.uniform(0.2, 3), rng.integers(2, 80))
        treatment = rng.normal(rng.uniform(-3, 3), rng.uniform(0.05, 3), rng.integers(2, 80))
        test = analyse(core, control, treatment)
        ref = stats.ttest_ind(treatment, control, equal_var=False)
        assert test.t_statistic == pytest.approx(ref.statistic, rel=1e-11)
        assert test.degrees_of_freedom == pytest.approx(ref.df, rel=1e-11)
        assert test.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
        ci = ref.confidence_interval(0.95)
        assert test.difference == pytest.approx(treatment.mean() - control.mean(), rel=1e-12, abs=1e-14)
        assert (test.difference_ci_low, test.difference_ci_high) == pytest.approx((ci.low, ci.high), rel=1e-9)


def paired(core: RefinementCore, control, treatment, design: Design = Design.PAIRED, **kw):
    """The rule of a paired design on all pairs (a planned size no experiment reaches)."""
    kw.setdefault("alpha", 0.05)
    return core.decide(
        list(control), list(treatment), design=design, planned_per_arm=10**9,
        direction=Direction.MAXIMIZE, **kw,
    )


def test_paired_t_and_wilcoxon_match_scipy(core: RefinementCore) -> None:
    rng = np.random.default_rng(17)
    for case in range(120):
        n = int(rng.integers(2, 120))
        control = rng.normal(0, rng.uniform(0.5, 5), n)
        treatment = control + rng.normal(rng.uniform(-1, 1), rng.uniform(0.1, 2), n)
        if case % 3 == 0:  # ties and zeros, as rounded measurements give them
            control, treatment = np.round(control, 1), np.round(treatment, 1)
        verdict = paired(core, control, treatment, alpha=0.1)
        test, rank = verdict.test, verdict.signed_rank
        ref = stats.ttest_rel(treatment, control)
        assert test.t_statistic == pytest.approx(ref.statistic, rel=1e-10)
        assert test.degrees_of_freedom == n - 1
        assert test.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
        ci = ref.confidence_interval(0.9)
        assert (test.difference_ci_low, test.difference_ci_high) == pytest.approx((ci.low, ci.high), rel=1e-9, abs=1e-12)
        d = treatment - control
        assert test.cohen_d == pytest.approx(d.mean() / d.std(ddof=1), rel=1e-10)
        if not np.any(d != 0):
            assert rank.nonzero == 0 and rank.p_value == 1.0
            continue
        method = "exact" if rank.exact else "asymptotic"
        ref_rank = stats.wilcoxon(d, zero_method="wilcox", correction=False, method=method)
        nonzero = d[d != 0]
        ranks = stats.rankdata(np.abs(nonzero))
        assert rank.nonzero == nonzero.size and rank.w_plus == pytest.approx(ranks[nonzero > 0].sum())
        assert rank.exact == (nonzero.size <= 50 and np.unique(np.abs(nonzero)).size == nonzero.size)
        assert rank.p_value == pytest.approx(ref_rank.pvalue, rel=1e-9, abs=1e-300), (case, method)


def test_the_msprt_likelihood_ratio_is_the_t_statistics_mixture_ratio(core: RefinementCore) -> None:
    """ln Λ_n against its definition by numerical integration: the density of the paired t
    statistic under the noncentral t, mixed over δ ~ N(0, τ²), over its density under H0."""
    from scipy import integrate

    rng = np.random.default_rng(23)
    for n, tau, shift in ((2, 0.5, 0.3), (5, 0.5, 0.0), (12, 1.0, 0.4), (40, 0.3, 0.2)):
        control = rng.normal(0, 1, n)
        treatment = control + rng.normal(shift, 1, n)
        verdict = paired(core, control, treatment, Design.PAIRED_SEQUENTIAL, alpha=1e-12, mixture_scale=tau)
        t = verdict.test.t_statistic
        mixed, _ = integrate.quad(
            lambda delta: stats.nct.pdf(t, n - 1, delta * math.sqrt(n)) * stats.norm.pdf(delta, 0, tau),
            -12 * tau, 12 * tau, epsabs=0, epsrel=1e-10, limit=200,
        )
        expected = math.log(mixed / stats.t.pdf(t, n - 1))
        assert verdict.sequential is not None and not verdict.sequential.crossed
        assert verdict.sequential.log_likelihood_ratio == pytest.approx(expected, rel=1e-6, abs=1e-9), n


def test_guardrails_veto_only_a_winner(core: RefinementCore) -> None:
    control, treatment = [1.0, 1.1, 0.9, 1.0], [2.0, 2.2, 1.9, 2.1]
    fuel = lambda growth: GuardrailSeries(  # noqa: E731
        Direction.MINIMIZE, 0.05, [100.0] * 4, [100.0 * growth] * 4
    )
    decide = lambda c, t, g: core.decide(  # noqa: E731
        c, t, design=Design.PAIRED, planned_per_arm=4, alpha=0.05,
        direction=Direction.MAXIMIZE, guardrails=[g],
    )
    vetoed = decide(control, treatment, fuel(1.2))
    assert vetoed.decision == Decision.VETOED
    check = vetoed.guardrails[0]
    assert check.breached and check.regression == pytest.approx(0.2)
    assert check.control_mean == 100.0 and check.treatment_mean == pytest.approx(120.0)
    assert decide(control, treatment, fuel(1.04)).decision == Decision.PROMOTE
    assert decide(treatment, control, fuel(1.2)).decision == Decision.ROLL_BACK


@pytest.mark.parametrize("df", [1.0, 2.5, 7.0, 30.0, 1e3, 1e6])
def test_student_t_tail_matches_scipy_far_into_the_tail(core: RefinementCore, df: float) -> None:
    """Across df and deep into the tail (shift 8 gives p ~ 1e-100 and below)."""
    rng = np.random.default_rng(int(df))
    n = max(2, min(int(df) + 1, 400))
    for shift in (0.0, 0.5, 2.0, 8.0):
        control = rng.normal(0, 1, n)
        treatment = rng.normal(shift, 1, n)
        test = analyse(core, control, treatment)
        expected = 2 * stats.t.sf(abs(test.t_statistic), test.degrees_of_freedom)
        assert test.p_value == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_hedges_g_and_its_interval(core: RefinementCore) -> None:
    rng = np.random.default_rng(3)
    control, treatment = rng.normal(10, 2, 25), rng.normal(11.5, 3, 35)
    test = analyse(core, control, treatment, alpha=0.05)
    nc, nt = len(control), len(treatment)
    pooled = math.sqrt(
        ((nc - 1) * control.var(ddof=1) + (nt - 1) * treatment.var(ddof=1)) / (nc + nt - 2)
    )
    d = (treatment.mean() - control.mean()) / pooled
    g = d * (1 - 3 / (4 * (nc + nt) - 9))
    se = math.sqrt((nc + nt) / (nc * nt) + g * g / (2 * (nc + nt)))
    z = stats.norm.ppf(0.975)
    assert test.cohen_d == pytest.approx(d, rel=1e-12)
    assert test.hedges_g == pytest.approx(g, rel=1e-12)
    assert (test.g_ci_low, test.g_ci_high) == pytest.approx((g - z * se, g + z * se), rel=1e-12)


def exact_power(n: int, effect: float, alpha: float) -> float:
    """Power of the two-sided equal-n t-test (noncentral t), as G*Power computes it."""
    df = 2 * n - 2
    nc = effect * math.sqrt(n / 2)
    crit = stats.t.ppf(1 - alpha / 2, df)
    return float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))


@pytest.mark.parametrize(
    ("effect", "alpha", "power"),
    [(0.2, 0.05, 0.8), (0.5, 0.05, 0.8), (0.8, 0.05, 0.8), (0.5, 0.01, 0.9), (1.5, 0.05, 0.95)],
)
def test_sample_size_reaches_the_power_and_is_nearly_minimal(
    core: RefinementCore, effect: float, alpha: float, power: float
) -> None:
    n = core.sample_size(alpha=alpha, power=power, effect=effect)
    assert exact_power(n, effect, alpha) >= power - 2e-3
    assert exact_power(n - 2, effect, alpha) < power  # at most one more than needed


def test_sample_size_rejects_an_impossible_plan(core: RefinementCore) -> None:
    with pytest.raises(CoreError) as err:
        core.sample_size(alpha=0.05, power=0.8, effect=0.0)
    assert err.value.status == STATUS_OUT_OF_RANGE and err.value.details == ("effect",)
    with pytest.raises(CoreError) as err:
        core.sample_size(alpha=0.05, power=1.0, effect=0.5)
    assert err.value.details == ("power",)


def test_decisions_only_at_the_planned_size(core: RefinementCore) -> None:
    rng = np.random.default_rng(11)
    control = list(rng.normal(100, 5, 40))
    better = list(rng.normal(110, 5, 40))
    decide = lambda c, t, d=Direction.MAXIMIZE: core.decide(  # noqa: E731
        c, t, design=Design.UNPAIRED, planned_per_arm=30, alpha=0.01, direction=d
    )
    early = decide(control[:29], better[:40])
    assert early.decision == Decision.PENDING and early.test is not None
    assert early.test.p_value < 1e-6  # clear already, and still no decision
    assert decide(control, better).decision == Decision.PROMOTE
    assert decide(better, control).decision == Decision.ROLL_BACK
    assert decide(control, better, Direction.MINIMIZE).decision == Decision.ROLL_BACK
    same = list(rng.normal(100, 5, 40))
    verdict = decide(control, same)
    assert verdict.decision == Decision.INCONCLUSIVE and verdict.samples_used == 30
    # The verdict rests on the first 30 of each arm; later observations cannot move it.
    assert decide(control, same + [1e6] * 20).decision == Decision.INCONCLUSIVE


def test_no_peeking_keeps_the_false_positive_rate_at_alpha(core: RefinementCore) -> None:
    """A/A experiments: the rule promotes or rolls back in about alpha of them."""
    rng = np.random.default_rng(5)
    runs, alpha = 400, 0.05
    decided = 0
    for _ in range(runs):
        a, b = rng.normal(0, 1, (2, 20))
        v = core.decide(
            list(a), list(b), design=Design.UNPAIRED, planned_per_arm=20, alpha=alpha,
            direction=Direction.MAXIMIZE,
        )
        decided += v.decision in (Decision.PROMOTE, Decision.ROLL_BACK)
    # Binomial(400, 0.05): mean 20, sd 4.4; the bounds are ~3 sd.
    assert 7 <= decided <= 34


def test_anomaly_false_positive_rate_on_a_stationary_stream(core: RefinementCore) -> None:
    """Each rule's false-positive rate on a stationary stream, bounded on both sides: the
    exact (Clopper-Pearson) 99.9 % binomial interval of its count must hold the rate
    theory gives, the normal 3-sd tail for the z-score and the t(39) tail for the EWMA
    (README: measured 0.27 % and 0.45 %). Too many flags and too few (a rule that
    stopped flagging) both fail."""
    rng = np.random.default_rng(2026)
    n = 20_000
    values = rng.normal(50.0, 4.0, n)
    result = core.patterns(list(np.arange(n, dtype=float)), list(values), z_threshold=3.0, ewma_alpha=0.3)
    for method, expected in ((1, NORMAL_3SD_TAIL), (2, EWMA_3SD_TAIL)):
        flagged = sum(h.method == method for h in result.anomalies)
        interval = stats.binomtest(flagged, n, expected).proportion_ci(confidence_level=0.999, method="exact")
        assert interval.low <= expected <= interval.high, (method, flagged / n, expected, interval)
    assert result.trend is not None and result.trend.direction == 1  # flat
    assert result.mean == pytest.approx(values.mean()) and result.stddev == pytest.approx(values.std(ddof=1))


def test_a_level_shift_is_flagged_and_the_trend_is_found(core: RefinementCore) -> None:
    rng = np.random.default_rng(1)
    values = list(rng.normal(10, 0.5, 200))
    values[150] = 30.0
    result = core.patterns(list(range(200)), values, z_threshold=3.0, ewma_alpha=0.3)
    top = result.anomalies[0]
    assert top.index == 150 and top.score > 10
    assert {h.method for h in result.anomalies if h.index == 150} == {1, 2}
    rising = [0.1 * i + rng.normal(0, 0.5) for i in range(100)]
    trend = core.patterns(list(range(100)), rising, z_threshold=3.0, ewma_alpha=0.3).trend
    assert trend is not None and trend.direction == 2
    assert trend.slope == pytest.approx(stats.linregress(range(100), rising).slope, rel=1e-9)
    assert trend.p_value == pytest.approx(stats.linregress(range(100), rising).pvalue, rel=1e-6)


def test_evolution_trigger_rules(core: RefinementCore) -> None:
    rng = np.random.default_rng(9)
    rule = TriggerRule(direction=Direction.MAXIMIZE, window=30)
    steady = [(v, True) for v in rng.normal(0.8, 0.01, 60)]
    assert core.should_evolve(steady[:20], rule).trigger == 2  # insufficient data
    assert core.should_evolve(steady, rule).trigger == 1  # none
    plateau = core.should_evolve(steady, TriggerRule(Direction.MAXIMIZE, window=30, plateau=True))
    assert plateau.trigger == 6 and plateau.should_evolve and "plateau" in plateau.reason
    worse = steady[:30] + [(v, True) for v in rng.normal(0.6, 0.01, 30)]
    degraded = core.should_evolve(worse, rule)
    assert degraded.trigger == 3 and degraded.degradation == pytest.approx(0.25, abs=0.02)
    failing = steady[:50] + [(0.0, False)] * 10
    failed = core.should_evolve(failing, rule)
    assert failed.trigger == 5 and failed.failure_rate == pytest.approx(1 / 3)
    improving = steady[:30] + [(v, True) for v in rng.normal(0.9, 0.01, 30)]
    assert core.should_evolve(improving, TriggerRule(Direction.MAXIMIZE, 30, plateau=True)).trigger == 1


def test_bad_values_are_refused_by_the_core(core: RefinementCore) -> None:
    with pytest.raises(CoreError) as err:
        core.decide(
            [1.0, math.nan], [1.0, 2.0], design=Design.UNPAIRED, planned_per_arm=2, alpha=0.05,
            direction=Direction.MINIMIZE,
        )
    assert err.value.status == STATUS_BAD_REQUEST and err.value.details == ("control", "1")
    with pytest.raises(CoreError) as err:
        core.decide(
            [1.0, 2.0], [1.0, 2.0], design=Design.UNPAIRED, planned_per_arm=2, alpha=0.7,
            direction=Direction.MINIMIZE,
        )
    assert err.value.details == ("alpha",)
    with pytest.raises(CoreError) as err:
        core.decide(
            [1.0, 2.0], [1.0], design=Design.PAIRED, planned_per_arm=2, alpha=0.05,
            direction=Direction.MINIMIZE,
        )
    assert err.value.status == STATUS_BAD_REQUEST and err.value.details == ("treatment",)
