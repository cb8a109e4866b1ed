"""RefinementService on a real loopback server: A/B tests, patterns, triggers, tuning, bad input."""

from __future__ import annotations

import math
import urllib.request
from collections.abc import Iterable, Iterator

import grpc
import numpy as np
import pytest
from scipy import stats
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from chimera.framework import ChimeraServer, ServerConfig
from chimera.refinement.main import Options, build_server, parse_args
from chimera.v1 import common_pb2, refinement_pb2, refinement_pb2_grpc

MAXIMIZE = common_pb2.OPTIMIZATION_DIRECTION_MAXIMIZE
MINIMIZE = common_pb2.OPTIMIZATION_DIRECTION_MINIMIZE
R = refinement_pb2
UNPAIRED = R.EXPERIMENT_DESIGN_UNPAIRED
PAIRED = R.EXPERIMENT_DESIGN_PAIRED
SEQUENTIAL = R.EXPERIMENT_DESIGN_PAIRED_SEQUENTIAL
Stub = refinement_pb2_grpc.RefinementServiceStub


@pytest.fixture(scope="module")
def server() -> Iterator[ChimeraServer]:
    with build_server(ServerConfig(port=0, metrics_port=0), Options()) as running:
        yield running


@pytest.fixture(scope="module")
def stub(server: ChimeraServer) -> Iterator[Stub]:
    with grpc.insecure_channel(server.target) as channel:
        yield refinement_pb2_grpc.RefinementServiceStub(channel)


def experiment(
    stub: Stub, n: int = 20, direction: int = MAXIMIZE, design: int = UNPAIRED, **kw: object
) -> R.Experiment:
    return stub.CreateExperiment(
        R.CreateExperimentRequest(
            name="genome A/B",
            metric="quality",
            control=R.Variant(name="control", genome_id="g-base"),
            treatment=R.Variant(name="treatment", genome_id="g-new"),
            min_samples_per_arm=n,
            direction=direction,
            design=design,
            **kw,
        ),
        timeout=10,
    )


def record(stub: Stub, exp_id: str, arm: str, values: Iterable[float]) -> R.Experiment | None:
    last = None
    for v in values:
        last = stub.RecordObservation(
            R.RecordObservationRequest(experiment_id=exp_id, variant_name=arm, value=float(v)),
            timeout=10,
        )
    return last


def analyse(stub: Stub, exp_id: str) -> R.ExperimentAnalysis:
    return stub.AnalyzeExperiment(R.AnalyzeExperimentRequest(experiment_id=exp_id), timeout=10)


def test_a_better_treatment_is_promoted_only_at_the_planned_size(stub: Stub, server: ChimeraServer) -> None:
    rng = np.random.default_rng(1)
    exp = experiment(stub, n=20, alpha=0.01)
    assert exp.status == R.EXPERIMENT_STATUS_RUNNING and exp.min_samples_per_arm == 20
    record(stub, exp.id, "control", rng.normal(0.60, 0.05, 20))
    state = record(stub, exp.id, "treatment", rng.normal(0.75, 0.05, 19))
    assert state.status == R.EXPERIMENT_STATUS_RUNNING and state.treatment_count == 19
    early = analyse(stub, exp.id)
    assert early.decision == R.EXPERIMENT_DECISION_PENDING and early.winner == ""
    assert early.p_value < 1e-6  # obvious already; the rule still waits for n = 20
    state = record(stub, exp.id, "treatment", rng.normal(0.75, 0.05, 1))
    assert state.status == R.EXPERIMENT_STATUS_READY
    done = analyse(stub, exp.id)
    assert done.decision == R.EXPERIMENT_DECISION_PROMOTE and done.winner == "treatment"
    assert done.significant and done.samples_used_per_arm == 20
    assert done.hedges_g > 2 and done.effect_ci_low < done.hedges_g < done.effect_ci_high
    assert done.treatment.mean > done.control.mean and done.alpha == 0.01
    port = server.metrics_port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as page:
        exposition = page.read().decode()
    assert 'layer5_experiment_decisions_total{decision="promote"}' in exposition
    assert 'layer5_experiment_decisions_total{decision="pending"}' in exposition
    assert "layer5_experiments_created_total" in exposition


def test_a_worse_treatment_is_rolled_back_and_equal_arms_are_inconclusive(stub: Stub) -> None:
    rng = np.random.default_rng(2)
    worse = experiment(stub, n=15, direction=MINIMIZE)  # e.g. latency: lower is better
    record(stub, worse.id, "control", rng.normal(10.0, 1.0, 15))
    record(stub, worse.id, "treatment", rng.normal(13.0, 1.0, 15))
    verdict = analyse(stub, worse.id)
    assert verdict.decision == R.EXPERIMENT_DECISION_ROLL_BACK and verdict.winner == "control"
    same = experiment(stub, n=15)
    record(stub, same.id, "control", rng.normal(5.0, 1.0, 15))
    record(stub, same.id, "treatment", rng.normal(5.0, 1.0, 15))
    verdict = analyse(stub, same.id)
    assert verdict.decision == R.EXPERIMENT_DECISION_INCONCLUSIVE and not verdict.winner
    assert verdict.p_value >= 0.05


def test_the_planned_size_can_come_from_a_power_analysis(stub: Stub) -> None:
    exp = experiment(stub, n=0, minimum_detectable_effect=0.5, power=0.8)
    assert exp.min_samples_per_arm == 64 and exp.power == 0.8
    assert experiment(stub, n=0).min_samples_per_arm == 30  # the documented default


def test_analysis_needs_two_observations_per_arm(stub: Stub) -> None:
    exp = experiment(stub)
    record(stub, exp.id, "control", [1.0, 2.0])
    record(stub, exp.id, "treatment", [1.0])
    with pytest.raises(grpc.RpcError) as err:
        analyse(stub, exp.id)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as err:
        analyse(stub, "exp-999999")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def kpi(i: int, value: float, module: str = "packer", version: int = 1, ok: bool = True) -> common_pb2.KpiReport:
    return common_pb2.KpiReport(
        task_id=f"{module}-{version}-{i}",
        module_name=module,
        module_version=version,
        latency_ms=5.0 + (i % 7) * 0.1,
        fuel_consumed=1000 + i % 13,
        status=common_pb2.RUN_OUTCOME_SUCCESS if ok else common_pb2.RUN_OUTCOME_TRAPPED,
        metrics={"quality": value},
        recorded_at=Timestamp(seconds=1_800_000_000 + i),
    )


def test_patterns_over_ingested_reports(stub: Stub) -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(0.7, 0.01, 120)
    values[90] = 0.2
    reply = stub.IngestKpis(
        R.KpiBatch(reports=[kpi(i, v, module="pat") for i, v in enumerate(values)]), timeout=10
    )
    assert reply.accepted == 120 and reply.evicted == 0
    result = stub.DetectPatterns(
        R.DetectPatternsRequest(metric="quality", module_name="pat", cluster_count=2, seed=1),
        timeout=60,
    )
    assert result.samples_analyzed == 120
    assert result.anomalies[0].task_id == "pat-1-90"
    assert {a.method for a in result.anomalies if a.task_id == "pat-1-90"} == {
        R.ANOMALY_METHOD_ZSCORE,
        R.ANOMALY_METHOD_EWMA,
    }
    assert result.trend.direction == R.TREND_DIRECTION_FLAT and result.trend.sample_count == 120
    assert list(result.cluster_features) == ["quality", "latency_ms", "fuel_consumed"]
    assert sum(c.size for c in result.clusters) == 120 and len(result.clusters[0].centroid) == 3
    windowed = stub.DetectPatterns(
        R.DetectPatternsRequest(metric="quality", module_name="pat", module_version=1, window=20),
        timeout=10,
    )
    assert windowed.samples_analyzed == 20 and not windowed.clusters


def test_should_evolve_on_degradation_and_plateau(stub: Stub) -> None:
    rng = np.random.default_rng(4)
    good, bad = rng.normal(0.8, 0.01, 40), rng.normal(0.6, 0.01, 40)
    reports = [kpi(i, v, module="deg") for i, v in enumerate(np.concatenate([good, bad]))]
    stub.IngestKpis(R.KpiBatch(reports=reports), timeout=10)
    ask = lambda module, **kw: stub.ShouldEvolve(  # noqa: E731
        R.ShouldEvolveRequest(module_name=module, metric="quality", direction=MAXIMIZE, window=40, **kw),
        timeout=10,
    )
    degraded = ask("deg")
    assert degraded.should_evolve and degraded.trigger == R.EVOLUTION_TRIGGER_DEGRADATION
    assert degraded.degradation == pytest.approx(0.25, abs=0.02) and "worse" in degraded.reason
    flat = [kpi(i, v, module="flat") for i, v in enumerate(rng.normal(0.8, 0.01, 80))]
    stub.IngestKpis(R.KpiBatch(reports=flat), timeout=10)
    assert ask("flat").trigger == R.EVOLUTION_TRIGGER_NONE and not ask("flat").should_evolve
    plateau = ask("flat", trigger_on_plateau=True)
    assert plateau.should_evolve and plateau.trigger == R.EVOLUTION_TRIGGER_PLATEAU
    assert plateau.p_value >= 0.05 and "plateau" in plateau.reason
    assert ask("nothing-here").trigger == R.EVOLUTION_TRIGGER_INSUFFICIENT_DATA


def test_optimize_proposes_near_the_optimum(stub: Stub) -> None:
    rng = np.random.default_rng(5)
    points = rng.uniform([-1, 0], [1, 4], (20, 2))
    values = (points[:, 0] - 0.4) ** 2 + (points[:, 1] - 3.0) ** 2  # minimised at (0.4, 3)
    result = stub.Optimize(
        R.OptimizeRequest(
            objective="latency_ms",
            bounds=[
                common_pb2.ParameterBounds(name="w_queue", lower=-1, upper=1),
                common_pb2.ParameterBounds(name="w_size", lower=0, upper=4),
            ],
            observations=[R.ParameterObservation(parameters=list(p), value=v) for p, v in zip(points, values)],
            direction=MINIMIZE,
            seed=3,
        ),
        timeout=60,
    )
    assert list(result.parameter_names) == ["w_queue", "w_size"]
    assert result.model == "gaussian_process_rbf" and result.model_r_squared > 0.8
    assert math.dist(result.suggested_parameters, (0.4, 3.0)) < 0.5
    assert result.best_observed_value == pytest.approx(values.min())
    assert result.expected_improvement >= 0


BAD_REQUESTS = [
    ("IngestKpis", R.KpiBatch(), "reports"),
    ("IngestKpis", R.KpiBatch(reports=[kpi(0, math.nan)]), "reports[0].metrics"),
    ("DetectPatterns", R.DetectPatternsRequest(), "metric"),
    ("DetectPatterns", R.DetectPatternsRequest(metric="q", ewma_alpha=2), "ewma_alpha"),
    ("DetectPatterns", R.DetectPatternsRequest(metric="q", module_version=3), "module_name"),
    ("CreateExperiment", R.CreateExperimentRequest(name="x", metric="q",
        control=R.Variant(name="a"), treatment=R.Variant(name="b")), "direction"),
    ("CreateExperiment", R.CreateExperimentRequest(name="x", metric="q", direction=MAXIMIZE, design=UNPAIRED,
        control=R.Variant(name="a"), treatment=R.Variant(name="a")), "treatment.name"),
    ("CreateExperiment", R.CreateExperimentRequest(name="x", metric="q", direction=MAXIMIZE, design=UNPAIRED, alpha=0.9,
        control=R.Variant(name="a"), treatment=R.Variant(name="b")), "alpha"),
    ("CreateExperiment", R.CreateExperimentRequest(name="x", metric="q", direction=MAXIMIZE, design=UNPAIRED,
        minimum_detectable_effect=0.001, control=R.Variant(name="a"), treatment=R.Variant(name="b")),
        "minimum_detectable_effect"),
    ("CreateExperiment", R.CreateExperimentRequest(name="x", metric="q", direction=MAXIMIZE, design=UNPAIRED,
        minimum_detectable_effect=1e-9, control=R.Variant(name="a"), treatment=R.Variant(name="b")),
        "minimum_detectable_effect"),
    ("CreateExperiment", R.CreateExperimentRequest(name="x", metric="q", direction=MAXIMIZE,
        control=R.Variant(name="a"), treatment=R.Variant(name="b")), "design"),
    ("CreateExperiment", R.CreateExperimentRequest(name="x", metric="q", direction=MAXIMIZE, design=PAIRED,
        control=R.Variant(name="a"), treatment=R.Variant(name="b"),
        guardrails=[R.Guardrail(metric="fuel", direction=MINIMIZE, max_regression=0.1)] * 2), "guardrails[1].metric"),
    ("CreateExperiment", R.CreateExperimentRequest(name="x", metric="q", direction=MAXIMIZE, design=PAIRED,
        control=R.Variant(name="a"), treatment=R.Variant(name="b"),
        guardrails=[R.Guardrail(metric="fuel", direction=MINIMIZE, max_regression=math.nan)]), "guardrails[0].max_regression"),
    ("CreateExperiment", R.CreateExperimentRequest(name="x", metric="q", direction=MAXIMIZE, design=PAIRED,
        control=R.Variant(name="a"), treatment=R.Variant(name="b"),
        guardrails=[R.Guardrail(metric="fuel", max_regression=0.1)]), "guardrails[0].direction"),
    ("CreateExperiment", R.CreateExperimentRequest(name="x", metric="q", direction=MAXIMIZE, design=PAIRED,
        control=R.Variant(name="a"), treatment=R.Variant(name="b"), mixture_scale=0.5), "mixture_scale"),
    ("RecordObservation", R.RecordObservationRequest(experiment_id="e", variant_name="a", value=math.inf), "value"),
    ("RecordObservation", R.RecordObservationRequest(experiment_id="e", variant_name="a", value=1,
        guardrail_values={"fuel": math.nan}), "guardrail_values[\"fuel\"]"),
    ("RecordObservation", R.RecordObservationRequest(variant_name="a"), "experiment_id"),
    ("AnalyzeExperiment", R.AnalyzeExperimentRequest(), "experiment_id"),
    ("Optimize", R.OptimizeRequest(direction=MINIMIZE, bounds=[common_pb2.ParameterBounds(name="p", lower=1, upper=1)],
        observations=[R.ParameterObservation(parameters=[1], value=1)] * 2), "bounds[0].upper"),
    ("Optimize", R.OptimizeRequest(direction=MINIMIZE, bounds=[common_pb2.ParameterBounds(name="p", lower=0, upper=1)],
        observations=[R.ParameterObservation(parameters=[1, 2], value=1)] * 2), "observations[0].parameters"),
    ("Optimize", R.OptimizeRequest(direction=MINIMIZE, bounds=[common_pb2.ParameterBounds(name="p", lower=0, upper=1)],
        observations=[R.ParameterObservation(parameters=[1], value=1)]), "observations"),
    ("ShouldEvolve", R.ShouldEvolveRequest(module_name="m", metric="q"), "direction"),
    ("ShouldEvolve", R.ShouldEvolveRequest(module_name="m", metric="q", direction=MAXIMIZE, max_anomaly_rate=2), "max_anomaly_rate"),
]


@pytest.mark.parametrize(("method", "request_", "field"), BAD_REQUESTS, ids=[f"{m}-{f}" for m, _, f in BAD_REQUESTS])
def test_bad_input_is_invalid_argument_naming_the_field(
    stub: Stub, method: str, request_: Message, field: str
) -> None:
    with pytest.raises(grpc.RpcError) as err:
        getattr(stub, method)(request_, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert err.value.details().startswith(f"field '{field}"), err.value.details()


def fuel_guarded(stub: Stub, design: int = PAIRED, n: int = 10, **kw: object) -> R.Experiment:
    guard = R.Guardrail(metric="fuel_per_item", direction=MINIMIZE, max_regression=0.05)
    return experiment(stub, n=n, design=design, guardrails=[guard], **kw)


def observe(stub: Stub, exp_id: str, arm: str, unit: str, value: float, **guardrails: float) -> R.Experiment:
    return stub.RecordObservation(
        R.RecordObservationRequest(
            experiment_id=exp_id, variant_name=arm, value=value, unit_id=unit, guardrail_values=guardrails
        ),
        timeout=10,
    )


def test_observations_that_break_the_design_name_their_field(stub: Stub) -> None:
    exp = fuel_guarded(stub)
    observe(stub, exp.id, "control", "i-1", 0.5, fuel_per_item=10.0)
    cases = [
        (dict(unit=""), "unit_id"),  # a paired design needs the unit
        (dict(unit="i-1"), "unit_id"),  # already recorded for this arm
        (dict(unit="i-2", guardrails={}), "guardrail_values"),  # the guardrail's value is missing
        (dict(unit="i-2", guardrails={"fuel_per_item": 1.0, "memory": 2.0}), "guardrail_values"),
    ]
    for case, field in cases:
        with pytest.raises(grpc.RpcError) as err:
            observe(stub, exp.id, "control", case["unit"], 0.5, **case.get("guardrails", {"fuel_per_item": 1.0}))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
        assert err.value.details().startswith(f"field '{field}'"), err.value.details()
    # Nothing was lost or overwritten: one control observation, and the same unit pairs in the other arm.
    state = observe(stub, exp.id, "treatment", "i-1", 0.6, fuel_per_item=10.0)
    assert (state.control_count, state.treatment_count, state.pair_count) == (1, 1, 1)
    with pytest.raises(grpc.RpcError) as err:
        analyse(stub, exp.id)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "pairs" in err.value.details()


def paired_units(rng: np.random.Generator, n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """Units that differ a lot from each other; the treatment shifts each by ``shift`` ± 0.05."""
    base = rng.uniform(0.3, 0.9, n)
    return base, base + shift + rng.normal(0, 0.05, n)


def test_a_paired_experiment_finds_what_welch_misses(stub: Stub) -> None:
    rng = np.random.default_rng(4)
    control, treatment = paired_units(rng, 20, 0.04)
    paired = experiment(stub, n=20, design=PAIRED)
    # Units arrive in a different order per arm; pairing is by unit id, not position.
    for i in rng.permutation(20):
        observe(stub, paired.id, "treatment", f"inst-{i}", treatment[i])
    for i in range(20):
        state = observe(stub, paired.id, "control", f"inst-{i}", control[i])
    assert state.status == R.EXPERIMENT_STATUS_READY and state.pair_count == 20
    result = analyse(stub, paired.id)
    ref = stats.ttest_rel(treatment, control)
    assert result.decision == R.EXPERIMENT_DECISION_PROMOTE and result.winner == "treatment"
    assert result.design == PAIRED and result.samples_used_per_arm == 20
    assert result.t_statistic == pytest.approx(ref.statistic, rel=1e-10)
    assert result.p_value == pytest.approx(ref.pvalue, rel=1e-8)
    ci = ref.confidence_interval(0.95)
    assert (result.mean_difference_ci_low, result.mean_difference_ci_high) == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert result.mean_difference == pytest.approx(np.mean(treatment - control), rel=1e-12)
    wilcoxon = stats.wilcoxon(treatment - control, method="exact")
    assert result.wilcoxon.p_value == pytest.approx(wilcoxon.pvalue, rel=1e-9) and result.wilcoxon.exact
    assert result.wilcoxon.nonzero_pairs == 20 and not result.HasField("sequential")
    # The same data as independent samples: the spread between units hides the shift.
    unpaired = experiment(stub, n=20, design=UNPAIRED)
    record(stub, unpaired.id, "control", control)
    record(stub, unpaired.id, "treatment", treatment)
    welch = analyse(stub, unpaired.id)
    assert welch.decision == R.EXPERIMENT_DECISION_INCONCLUSIVE and welch.p_value > 0.05
    assert not welch.HasField("wilcoxon")


def test_a_guardrail_regression_vetoes_a_winning_candidate(stub: Stub) -> None:
    rng = np.random.default_rng(6)
    control, treatment = paired_units(rng, 10, 0.1)
    for fuel_growth, decision in ((1.06, R.EXPERIMENT_DECISION_VETOED), (1.02, R.EXPERIMENT_DECISION_PROMOTE)):
        exp = fuel_guarded(stub)
        for i in range(10):
            fuel = float(rng.uniform(900, 1100))
            observe(stub, exp.id, "control", f"u{i}", control[i], fuel_per_item=fuel)
            observe(stub, exp.id, "treatment", f"u{i}", treatment[i], fuel_per_item=fuel * fuel_growth)
        result = analyse(stub, exp.id)
        assert result.decision == decision and result.significant
        (guard,) = result.guardrails
        assert guard.metric == "fuel_per_item" and guard.max_regression == 0.05
        assert guard.regression == pytest.approx(fuel_growth - 1, rel=1e-9)
        assert guard.breached == (decision == R.EXPERIMENT_DECISION_VETOED)
        assert result.winner == ("control" if guard.breached else "treatment")


def test_a_sequential_experiment_stops_early_and_keeps_its_verdict(stub: Stub) -> None:
    rng = np.random.default_rng(8)
    control, treatment = paired_units(rng, 200, 0.04)
    exp = experiment(stub, n=200, design=SEQUENTIAL, alpha=0.05)
    assert exp.mixture_scale == 0.5  # the documented default
    verdicts = []
    for i in range(60):
        observe(stub, exp.id, "control", f"u{i}", control[i])
        observe(stub, exp.id, "treatment", f"u{i}", treatment[i])
        if i >= 1:
            verdicts.append(analyse(stub, exp.id))  # a look after every pair
    decided = [v for v in verdicts if v.decision != R.EXPERIMENT_DECISION_PENDING]
    assert decided, "a 0.8 sd effect is found well within 60 pairs"
    first = decided[0]
    assert first.decision == R.EXPERIMENT_DECISION_PROMOTE and first.sequential.stopped
    assert first.sequential.always_valid_p_value <= 0.05 and first.significant
    assert first.sequential.log_likelihood_ratio >= first.sequential.log_threshold == pytest.approx(math.log(20))
    assert first.samples_used_per_arm < 60
    assert all((v.decision, v.samples_used_per_arm) == (first.decision, first.samples_used_per_arm) for v in decided)
    pending = [v for v in verdicts if v.decision == R.EXPERIMENT_DECISION_PENDING]
    assert all(v.sequential.always_valid_p_value > 0.05 and not v.significant for v in pending)


def test_unknown_arm_and_experiment(stub: Stub) -> None:
    exp = experiment(stub)
    with pytest.raises(grpc.RpcError) as err:
        record(stub, exp.id, "nobody", [1.0])
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "variant_name" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        record(stub, "exp-424242", "control", [1.0])
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_flags(capsys: pytest.CaptureFixture[str]) -> None:
    config, options = parse_args(["--port", "0", "--execution-target", "127.0.0.1:1", "--buffer-capacity", "7"])
    assert config.port == 0 and options.execution_target == "127.0.0.1:1" and options.buffer_capacity == 7
    with pytest.raises(SystemExit) as exit_:
        parse_args(["--max-versions", "0"])
    assert exit_.value.code == 2 and "--max-versions must be at least 1" in capsys.readouterr().err


def test_an_experiment_resumes_from_its_journal(stub: Stub, tmp_path) -> None:
    """--state-dir: a server started on the journal of one that died has every
    experiment with its observations in order, and decides as one that never stopped."""
    rng = np.random.default_rng(7)
    control, treatment = rng.normal(0.60, 0.05, 16), rng.normal(0.70, 0.05, 16)
    options = Options(state_dir=tmp_path / "state")
    config = ServerConfig(port=0, metrics_port=None)
    with build_server(config, options) as first, grpc.insecure_channel(first.target) as channel:
        before = refinement_pb2_grpc.RefinementServiceStub(channel)
        exp = experiment(before, n=16)
        record(before, exp.id, "control", control)
        record(before, exp.id, "treatment", treatment[:9])
    with open(tmp_path / "state" / "experiments.jsonl", "a") as journal:
        journal.write('{"observed":"exp-000001","arm":"treat')  # a write the kill cut short
    with build_server(config, options) as second, grpc.insecure_channel(second.target) as channel:
        after = refinement_pb2_grpc.RefinementServiceStub(channel)
        state = record(after, exp.id, "treatment", treatment[9:10])
        assert (state.control_count, state.treatment_count) == (16, 10)
        assert experiment(after, n=16).id == "exp-000002"  # ids go on after the recorded ones
        record(after, exp.id, "treatment", treatment[10:])
        resumed = analyse(after, exp.id)
    # The same observations on a server that never stopped.
    uninterrupted = experiment(stub, n=16)
    record(stub, uninterrupted.id, "control", control)
    record(stub, uninterrupted.id, "treatment", treatment)
    expected = analyse(stub, uninterrupted.id)
    expected.experiment_id = resumed.experiment_id
    assert resumed == expected and resumed.samples_used_per_arm == 16


def test_a_paired_experiment_resumes_with_its_units_pairs_and_guardrails(stub: Stub, tmp_path) -> None:
    """--state-dir with a paired design: units, the order the pairs completed and the
    guardrail values come back, and a repeated unit is still refused after the restart."""
    rng = np.random.default_rng(11)
    control, treatment = paired_units(rng, 12, 0.1)
    order = rng.permutation(12)
    options = Options(state_dir=tmp_path / "state")
    config = ServerConfig(port=0, metrics_port=None)

    def first_half(s: Stub, exp_id: str) -> None:
        for i in order[:8]:  # the treatment arm out of order, so the pairs complete out of order
            observe(s, exp_id, "treatment", f"inst-{i}", treatment[i], fuel_per_item=10.0)
        for i in range(6):
            observe(s, exp_id, "control", f"inst-{i}", control[i], fuel_per_item=10.2)

    def second_half(s: Stub, exp_id: str) -> R.Experiment:
        for i in order[8:]:
            observe(s, exp_id, "treatment", f"inst-{i}", treatment[i], fuel_per_item=10.0)
        for i in range(6, 12):
            state = observe(s, exp_id, "control", f"inst-{i}", control[i], fuel_per_item=10.2)
        return state

    with build_server(config, options) as first, grpc.insecure_channel(first.target) as channel:
        before = refinement_pb2_grpc.RefinementServiceStub(channel)
        exp = fuel_guarded(before, design=SEQUENTIAL, n=12)
        first_half(before, exp.id)
    with build_server(config, options) as second, grpc.insecure_channel(second.target) as channel:
        after = refinement_pb2_grpc.RefinementServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:  # the unit is in the journal
            observe(after, exp.id, "control", "inst-0", 0.5, fuel_per_item=10.0)
        assert err.value.details().startswith("field 'unit_id'"), err.value.details()
        resumed_state = second_half(after, exp.id)
        resumed = analyse(after, exp.id)
    uninterrupted = fuel_guarded(stub, design=SEQUENTIAL, n=12)
    first_half(stub, uninterrupted.id)
    expected_state = second_half(stub, uninterrupted.id)
    expected = analyse(stub, uninterrupted.id)
    assert resumed_state.pair_count == expected_state.pair_count == 12
    expected.experiment_id = resumed.experiment_id
    assert resumed == expected and len(resumed.guardrails) == 1
