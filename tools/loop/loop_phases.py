"""The closed loop's phases, each an ordinary gRPC client of one or two layers.

Every figure a phase returns comes from an RPC answer: qualities from layer 4
``EvaluateBatch`` reports, the trigger from layer 5 ``ShouldEvolve``, the grant
that layer 7 obtained from layer 8 (``BeginRun``), the strategy from layer 6
``SelectAlgorithm`` (a genetic-algorithm operator arm, which layer 7 runs, and
whose outcome goes back with ``ReportOutcome``), genomes from layer 7
``RunGeneration``/``DeployBest``, the verdict from layer 5 ``AnalyzeExperiment``.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc

from google.protobuf import json_format

from chimera.execution.workload import GENOME_FIELDS, generate_instance
from chimera.v1 import (
    common_pb2,
    evolution_pb2,
    execution_pb2,
    genetics_pb2,
    refinement_pb2,
    resources_pb2,
    validation_pb2,
)

__all__ = [
    "BOUNDS",
    "LoopFailed",
    "Stubs",
    "call",
    "evaluate",
    "instances",
]

T = TypeVar("T")
RPC_TIMEOUT_S = 60.0
#: EvaluateBatch's own limits (execution.proto): inputs per batch and pairs per batch.
MAX_BATCH_INPUTS = 64
MAX_BATCH_PAIRS = 4096
METRIC = "quality"
MAXIMIZE = common_pb2.OPTIMIZATION_DIRECTION_MAXIMIZE
#: Exports the kernel must have (layer 3 checks them before layer 4 takes it).
REQUIRED_EXPORTS = ("chimera_run", "chimera_alloc")
#: The search space of layer 7: the six heuristic weights, then the two effort
#: knobs the kernel clamps to [0, 1] (see layers/layer4_execution/rust/src/genome.rs).
BOUNDS: tuple[tuple[str, float, float], ...] = tuple(
    (name, 0.0, 1.0) if name in ("lookahead", "effort") else (name, -5.0, 5.0)
    for name in GENOME_FIELDS
)


class LoopFailed(Exception):
    """A phase of the loop failed; the message is the one-line reason."""


@dataclass(frozen=True)
class Stubs:
    """One client stub per layer the loop talks to."""

    validation: Any
    execution: Any
    refinement: Any
    evolution: Any
    genetics: Any


@contextlib.contextmanager
def step(name: str) -> Iterator[None]:
    """Turns a failed RPC into LoopFailed naming the RPC, the status code and the details."""
    try:
        yield
    except grpc.RpcError as exc:
        if isinstance(exc, grpc.Call):
            raise LoopFailed(f"{name}: {exc.code().name}: {exc.details()}") from None
        raise LoopFailed(f"{name}: {exc}") from None


def call(name: str, rpc: Callable[..., T], request: Any, timeout: float = RPC_TIMEOUT_S) -> T:
    with step(name):
        return rpc(request, timeout=timeout)


def instances(first_seed: int, count: int, jobs: int) -> list[bytes]:
    """``count`` generated packing instances of ``jobs`` jobs, seeds ``first_seed``..."""
    return [generate_instance(first_seed + i, jobs).encode() for i in range(count)]


def genome_message(
    genome_id: str, agent_id: str, params: Sequence[float]
) -> common_pb2.AgentGenome:
    return common_pb2.AgentGenome(
        id=genome_id, agent_id=agent_id, parameters=list(params), parameter_names=GENOME_FIELDS
    )


# --- layer 3 -> 4: the kernel through the gate -------------------------------------------


def deploy_kernel(stubs: Stubs, module_name: str, wasm: bytes) -> dict[str, Any]:
    """ValidateModule on layer 3, then DeployModule on layer 4 with that verdict."""
    digest = hashlib.sha256(wasm).hexdigest()
    verdict = call(
        "Validation ValidateModule",
        stubs.validation.ValidateModule,
        validation_pb2.ValidateModuleRequest(
            module_name=module_name,
            wasm=wasm,
            expected_sha256=digest,
            required_exports=REQUIRED_EXPORTS,
            context={"caller": "closed_loop"},
        ),
    )
    if not verdict.is_valid:
        findings = "; ".join(f"{f.rule}: {f.message}" for f in verdict.findings)
        raise LoopFailed(f"Validation ValidateModule: kernel rejected: {findings}")
    deployment = call(
        "Execution DeployModule",
        stubs.execution.DeployModule,
        execution_pb2.DeployModuleRequest(
            module_name=module_name, wasm=wasm, verdict_id=verdict.verdict_id, activate=True
        ),
    )
    return {"verdict_id": verdict.verdict_id, "sha256": digest, "version": deployment.version}


# --- layer 4: batched evaluation ----------------------------------------------------------


@dataclass
class Evaluation:
    """Per-genome qualities (input order) of one or more EvaluateBatch calls."""

    qualities: list[list[float]]
    pairs: int = 0
    failed: int = 0
    batches: int = 0
    wall_ms: float = 0.0
    module_version: int = 0

    def means(self) -> list[float]:
        return [statistics.fmean(q) for q in self.qualities]


def evaluate(
    stubs: Stubs,
    module_name: str,
    genomes: Sequence[common_pb2.AgentGenome],
    inputs: Sequence[bytes],
    batch_id: str,
) -> Evaluation:
    """Every genome on every input through EvaluateBatch (one call while the limits allow).

    A pair that did not succeed scores quality 0 and is counted in ``failed``:
    a genome that makes the kernel fail must not look good.
    """
    per_call = max(1, min(MAX_BATCH_INPUTS, MAX_BATCH_PAIRS // max(1, len(genomes))))
    result = Evaluation(qualities=[[] for _ in genomes])
    for start in range(0, len(inputs), per_call):
        chunk = list(inputs[start : start + per_call])
        response = call(
            "Execution EvaluateBatch",
            stubs.execution.EvaluateBatch,
            execution_pb2.EvaluateBatchRequest(
                module_name=module_name,
                genomes=list(genomes),
                inputs=chunk,
                batch_id=f"{batch_id}.{start}",
                batch_timeout_ms=120_000,
            ),
            timeout=150.0,
        )
        if len(response.reports) != len(genomes) * len(chunk):
            raise LoopFailed(
                f"Execution EvaluateBatch: {len(response.reports)} reports for "
                f"{len(genomes)} genomes x {len(chunk)} inputs"
            )
        for index, report in enumerate(response.reports):
            ok = report.status == common_pb2.RUN_OUTCOME_SUCCESS and METRIC in report.metrics
            result.qualities[index // len(chunk)].append(report.metrics[METRIC] if ok else 0.0)
            result.failed += 0 if ok else 1
        result.pairs += len(response.reports)
        result.batches += 1
        result.wall_ms += response.wall_ms
        result.module_version = response.module_version
    return result


# --- layer 5: the trigger -----------------------------------------------------------------


def wait_ingested(stubs: Stubs, module_name: str, count: int, timeout_s: float) -> int:
    """Waits until layer 5 holds ``count`` quality reports of the slot (its KPI subscription)."""
    deadline = time.monotonic() + timeout_s
    seen = 0
    while True:
        patterns = call(
            "Refinement DetectPatterns",
            stubs.refinement.DetectPatterns,
            refinement_pb2.DetectPatternsRequest(metric=METRIC, module_name=module_name),
        )
        seen = patterns.samples_analyzed
        if seen >= count:
            return seen
        if time.monotonic() > deadline:
            raise LoopFailed(
                f"Refinement: {seen}/{count} KPI reports arrived from layer 4 "
                f"within {timeout_s:g} s"
            )
        time.sleep(0.2)


def should_evolve(
    stubs: Stubs, module_name: str, window: int, min_improvement: float
) -> dict[str, Any]:
    decision = call(
        "Refinement ShouldEvolve",
        stubs.refinement.ShouldEvolve,
        refinement_pb2.ShouldEvolveRequest(
            module_name=module_name,
            metric=METRIC,
            direction=MAXIMIZE,
            window=window,
            trigger_on_plateau=True,
            min_improvement=min_improvement,
        ),
    )
    return {
        "should_evolve": decision.should_evolve,
        "trigger": refinement_pb2.EvolutionTrigger.Name(decision.trigger).removeprefix(
            "EVOLUTION_TRIGGER_"
        ),
        "reason": decision.reason,
        "current_mean": decision.current_mean,
        "baseline_mean": decision.baseline_mean,
        "p_value": decision.p_value,
        "sample_count": decision.sample_count,
    }


# --- layer 7 -> 8: the grant --------------------------------------------------------------


def begin_run(
    stubs: Stubs, agent_id: str, population: int, minutes: int
) -> genetics_pb2.RunGrantStatus:
    """Layer 7 BeginRun: layer 7 asks layer 8 for the run and holds the grant it gets."""
    return call(
        "Genetics BeginRun",
        stubs.genetics.BeginRun,
        genetics_pb2.BeginRunRequest(
            agent_id=agent_id,
            resources=genetics_pb2.RunResources(
                requirements=common_pb2.ResourceRequirements(cpu_cores=1.0, memory_bytes=512 * 2**20),
                wall_time_seconds=60 * minutes,
                priority=common_pb2.PRIORITY_NORMAL,
                population_size=population,
            ),
        ),
    )


def grant_json(status: genetics_pb2.RunGrantStatus) -> dict[str, Any]:
    """What layer 7 obtained from layer 8 (read, not enforced, by the loop)."""
    job = status.job
    return {
        "obtained_by": "layer 7 BeginRun (ScheduleJob/GetJob at layer 8)",
        "job_id": job.id,
        "allocation_id": job.allocation.id,
        "cpu_cores": job.grant.cpu_cores,
        "device_ids": list(job.grant.device_ids),
        "max_population": status.max_population,
        "wall_time_seconds": status.wall_time_seconds,
        "cost_usd": job.grant.cost_usd,
        "requested_population": job.population_size,
    }


def end_run(stubs: Stubs, agent_id: str) -> str:
    """Layer 7 EndRun (it releases the grant at layer 8); the job's final status."""
    ended = call("Genetics EndRun", stubs.genetics.EndRun, genetics_pb2.EndRunRequest(agent_id=agent_id))
    return resources_pb2.JobStatus.Name(ended.job.status)


# --- layer 6: the strategy ----------------------------------------------------------------


def problem(evaluation_budget: int) -> evolution_pb2.Problem:
    """The GA's problem; its class (objective family, dimension bucket) is layer 6's to derive."""
    return evolution_pb2.Problem(
        objective=evolution_pb2.Objective(name="packer_quality", direction=MAXIMIZE),
        dimensions=[common_pb2.ParameterBounds(name=n, lower=lo, upper=hi) for n, lo, hi in BOUNDS],
        evaluation_budget=evaluation_budget,
    )


def select_algorithm(stubs: Stubs, evaluation_budget: int) -> dict[str, Any]:
    """Layer 6's bandit picks the genetic algorithm's operator arm that layer 7 then runs."""
    choice = call(
        "Evolution SelectAlgorithm",
        stubs.evolution.SelectAlgorithm,
        evolution_pb2.SelectAlgorithmRequest(
            problem=problem(evaluation_budget),
            algorithm=evolution_pb2.EVOLUTION_ALGORITHM_GENETIC_ALGORITHM,
        ),
    )
    return {
        "algorithm": evolution_pb2.EvolutionAlgorithm.Name(choice.algorithm).removeprefix(
            "EVOLUTION_ALGORITHM_"
        ),
        "arm": choice.arm,
        "problem_class": choice.problem_class,
        "exploration": choice.exploration,
        "reason": choice.reason,
        "hyperparameters": dict(choice.hyperparameters),
        "operators": json_format.MessageToDict(choice.operators, preserving_proto_field_name=True),
        "arm_pulls": {a.arm: a.pulls for a in choice.arms},
    }


def report_outcome(stubs: Stubs, strategy: dict[str, Any], run: EvolutionRun) -> dict[str, Any]:
    """Layer 6 ReportOutcome for the arm that ran: its improvement per evaluation."""
    if not run.generations or run.best is None:
        return {"reported": False, "why": "no generation ran"}
    measurement = evolution_pb2.RunMeasurement(
        first_best=run.generations[0]["best_fitness"],
        final_best=run.best.metadata.fitness,
        evaluations=max(1, run.evaluations),
        direction=MAXIMIZE,
    )
    response = call(
        "Evolution ReportOutcome",
        stubs.evolution.ReportOutcome,
        evolution_pb2.ReportOutcomeRequest(
            problem_class=strategy["problem_class"],
            algorithm=evolution_pb2.EVOLUTION_ALGORITHM_GENETIC_ALGORITHM,
            arm=strategy["arm"],
            measurement=measurement,
        ),
    )
    return {
        "reported": True,
        "arm": response.arm,
        "reward": response.reward,
        "first_best": measurement.first_best,
        "final_best": measurement.final_best,
        "evaluations": measurement.evaluations,
        "arm_pulls": {a.arm: a.pulls for a in response.arms},
    }


# --- layer 7 (+ 6 + 4): the generations ---------------------------------------------------


@dataclass
class EvolutionRun:
    """What the GA generations produced."""

    generations: list[dict[str, Any]] = field(default_factory=list)
    evaluations: int = 0
    failed_pairs: int = 0
    stop_reason: str = ""
    best: common_pb2.AgentGenome | None = None
    #: The stored generation the run started from (0 for a new agent).
    resumed_from_generation: int = 0


def evolve(
    stubs: Stubs,
    *,
    module_name: str,
    agent_id: str,
    population: int,
    generations: int,
    training: Sequence[bytes],
    seed: int,
    strategy: dict[str, Any],
) -> EvolutionRun:
    """Layer 7 ask/tell generations; each population scored by ONE layer-4 EvaluateBatch.

    Fitness = the genome's mean quality over the training instances. The first
    generation is bred with the operators of layer 6's arm (``strategy``); after
    each, layer 6 SuggestOperators adapts them (1/5 rule on the mutation sigma)
    for the next. Layer 7 keeps the run within its grant: when it refuses a
    generation (RESOURCE_EXHAUSTED: the wall time ran out) the run stops there.
    """
    run = EvolutionRun()
    bounds = [common_pb2.ParameterBounds(name=n, lower=lo, upper=hi) for n, lo, hi in BOUNDS]
    operators = json_format.ParseDict(strategy["operators"], common_pb2.OperatorSettings())
    members, run.resumed_from_generation = _stored_population(stubs, agent_id)
    if not members:
        first = call(
            "Genetics RunGeneration",
            stubs.genetics.RunGeneration,
            genetics_pb2.RunGenerationRequest(
                agent_id=agent_id, population_size=population, bounds=bounds, seed=seed,
                operators=operators,
            ),
        )
        members = list(first.population)
    response: genetics_pb2.RunGenerationResponse | None = None
    recent: list[common_pb2.GenerationSummary] = []
    for generation in range(run.resumed_from_generation, generations):
        scored = evaluate(stubs, module_name, members, training, f"{agent_id}.g{generation}")
        if scored.batches != 1:  # parse_args keeps population x training within one batch
            raise LoopFailed(f"a generation took {scored.batches} EvaluateBatch calls, not one")
        run.evaluations += scored.pairs
        run.failed_pairs += scored.failed
        fitness = scored.means()
        request = genetics_pb2.RunGenerationRequest(
            agent_id=agent_id,
            evaluations=[
                genetics_pb2.GenomeEvaluation(genome_id=g.id, fitness=f)
                for g, f in zip(members, fitness, strict=True)
            ],
            seed=seed + generation + 1,
            operators=operators,
        )
        bred = _run_generation(stubs, request)
        if isinstance(bred, str):
            run.stop_reason = f"layer 7 refused generation {generation + 1}: {bred}"
            break
        response = bred
        summary = response.evaluated_generation
        recent.append(summary)
        run.generations.append(
            {
                "generation": summary.generation,
                "best_fitness": summary.best_fitness,
                "mean_fitness": summary.mean_fitness,
                "diversity": summary.diversity.mean_pairwise_distance,
                "batch_wall_ms": scored.wall_ms,
                "evaluations": run.evaluations,
                # Settings that bred the next population (layer 6's, after generation 0).
                "mutation_rate": response.operators.mutation_rate,
                "mutation_sigma": response.operators.mutation_sigma,
            }
        )
        members = list(response.population)
        operators = call(
            "Evolution SuggestOperators",
            stubs.evolution.SuggestOperators,
            evolution_pb2.SuggestOperatorsRequest(
                bounds=bounds, recent=recent[-5:], current=response.operators, direction=MAXIMIZE
            ),
        )
    else:
        start = run.resumed_from_generation
        run.stop_reason = (
            f"generations {start}..{generations - 1} ran"
            if start < generations
            else f"the stored population is already at generation {start}"
        )
    if response is not None and response.HasField("best"):
        run.best = response.best
    return run


def _run_generation(
    stubs: Stubs, request: genetics_pb2.RunGenerationRequest
) -> genetics_pb2.RunGenerationResponse | str:
    """RunGeneration; layer 7's refusal under its grant (RESOURCE_EXHAUSTED) as its message."""
    try:
        return stubs.genetics.RunGeneration(request, timeout=RPC_TIMEOUT_S)
    except grpc.RpcError as exc:
        if isinstance(exc, grpc.Call) and exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
            return str(exc.details())
        with step("Genetics RunGeneration"):
            raise


def _stored_population(
    stubs: Stubs, agent_id: str
) -> tuple[list[common_pb2.AgentGenome], int]:
    """The agent's newest stored generation and its number; ([], 0) for a new agent.

    A loop restarted on the same genome store (``--run-dir``) continues from
    there instead of starting over.
    """
    history = call(
        "Genetics ListGenomeHistory",
        stubs.genetics.ListGenomeHistory,
        genetics_pb2.ListGenomeHistoryRequest(agent_id=agent_id, limit=MAX_BATCH_PAIRS),
    )
    if not history.genomes:
        return [], 0
    newest = max(g.metadata.generation for g in history.genomes)
    members = [g for g in history.genomes if g.metadata.generation == newest]
    return sorted(members, key=lambda g: g.version), newest


# --- layer 5 (+ 4): the A/B experiment ----------------------------------------------------


def ab_test(
    stubs: Stubs,
    *,
    module_name: str,
    control: tuple[common_pb2.AgentGenome, int],
    treatment: tuple[common_pb2.AgentGenome, int],
    alpha: float,
    effect: float,
    power: float,
    holdout_seed: int,
    jobs: int,
    max_samples: int,
) -> dict[str, Any]:
    """Baseline vs candidate on held-out instances, decided once at the planned sample size.

    Layer 5 plans the size per arm from ``effect`` (Cohen's d), ``alpha`` and
    ``power``; exactly that many held-out instances are generated and run with
    both genomes (one EvaluateBatch), every per-instance quality is recorded,
    and the experiment is analysed once, when both arms are at the planned size.
    """
    (base, base_version), (cand, cand_version) = control, treatment
    experiment = call(
        "Refinement CreateExperiment",
        stubs.refinement.CreateExperiment,
        refinement_pb2.CreateExperimentRequest(
            name=f"{module_name}: baseline vs evolved",
            metric=METRIC,
            control=refinement_pb2.Variant(
                name="baseline", genome_id=base.id, module_version=base_version
            ),
            treatment=refinement_pb2.Variant(
                name="candidate", genome_id=cand.id, module_version=cand_version
            ),
            alpha=alpha,
            direction=MAXIMIZE,
            minimum_detectable_effect=effect,
            power=power,
        ),
    )
    planned = experiment.min_samples_per_arm
    if planned > max_samples:
        raise LoopFailed(
            f"Refinement CreateExperiment: planned {planned} samples per arm, more than "
            f"--max-holdout {max_samples}"
        )
    held_out = instances(holdout_seed, planned, jobs)
    scored = evaluate(stubs, module_name, [base, cand], held_out, f"{module_name}.ab")
    for base_q, cand_q in zip(scored.qualities[0], scored.qualities[1], strict=True):
        for arm, value in (("baseline", base_q), ("candidate", cand_q)):
            call(
                "Refinement RecordObservation",
                stubs.refinement.RecordObservation,
                refinement_pb2.RecordObservationRequest(
                    experiment_id=experiment.id, variant_name=arm, value=value
                ),
            )
    analysis = call(
        "Refinement AnalyzeExperiment",
        stubs.refinement.AnalyzeExperiment,
        refinement_pb2.AnalyzeExperimentRequest(experiment_id=experiment.id),
    )
    base_mean, cand_mean = analysis.control.mean, analysis.treatment.mean
    return {
        "experiment_id": experiment.id,
        "planned_samples_per_arm": planned,
        "samples_used_per_arm": analysis.samples_used_per_arm,
        "holdout_seeds": [holdout_seed, holdout_seed + planned - 1],
        "baseline_mean_quality": base_mean,
        "candidate_mean_quality": cand_mean,
        "relative_improvement": cand_mean / base_mean - 1 if base_mean > 0 else math.nan,
        "t_statistic": analysis.t_statistic,
        "p_value": analysis.p_value,
        "effect_size_cohens_d": analysis.effect_size,
        "hedges_g": analysis.hedges_g,
        "hedges_g_ci": [analysis.effect_ci_low, analysis.effect_ci_high],
        "alpha": analysis.alpha,
        "decision": refinement_pb2.ExperimentDecision.Name(analysis.decision).removeprefix(
            "EXPERIMENT_DECISION_"
        ),
        "evaluations": scored.pairs,
        "failed_pairs": scored.failed,
        # The recorded observations, per held-out instance, so the verdict can be re-checked.
        "observations": {"baseline": scored.qualities[0], "candidate": scored.qualities[1]},
    }
