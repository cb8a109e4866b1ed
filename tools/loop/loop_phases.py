"""The closed loop's phases on online bin packing, each an ordinary gRPC client of one or two layers.

Every figure a phase returns comes from an RPC answer: bin counts, L1 bounds
and fuel from layer 4 ``EvaluateBatch`` reports, the trigger from layer 5
``ShouldEvolve``, the grant that layer 7 obtained from layer 8 (``BeginRun``),
the strategy from layer 6 ``SelectAlgorithm`` (its portfolio: CMA-ES, SNES, DE
or the GA, run by layer 6 ask/tell; or the GA's operator arm, run by layer 7),
screened fitness from layer 6 ``ScreenStep`` (the JAX twin), the verdict from
layer 5 ``AnalyzeExperiment``.

The objective is the protocol's score: the excess of the bins used over the L1
bound, in % (``chimera.binpacking.instances.excess_pct``), minimised. Instances
come from the project's generators, each use from its own seed range; the
published sets are never read here (``//tools/loop:held_out_test``).
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
import numpy as np

from google.protobuf import json_format

from chimera.binpacking.genome import SEARCH_FIELDS
from chimera.binpacking.instances import Instance, excess_pct, generate
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
]

T = TypeVar("T")
RPC_TIMEOUT_S = 60.0
#: EvaluateBatch's own limits (execution.proto): inputs per batch and pairs per batch.
MAX_BATCH_INPUTS = 64
MAX_BATCH_PAIRS = 4096
#: The KPI layer 5 judges, as the kernel reports it.
METRIC = "excess_pct"
#: The guardrail metric: fuel (layer 4's deterministic cost) per item packed.
FUEL_PER_ITEM = "fuel_per_item"
MINIMIZE = common_pb2.OPTIMIZATION_DIRECTION_MINIMIZE
#: Exports the kernel must have (layer 3 checks them before layer 4 takes it).
REQUIRED_EXPORTS = ("chimera_run", "chimera_alloc")
#: The search space: every search field of the genome in [-10, 10]. The
#: priority is scale-free (only its argmax matters), so the box loses nothing.
BOUNDS: tuple[tuple[str, float, float], ...] = tuple((name, -10.0, 10.0) for name in SEARCH_FIELDS)
#: Strategies the loop can run, by the name layer 6's portfolio gives them.
PORTFOLIO_ALGORITHMS = {
    "cma_es": evolution_pb2.EVOLUTION_ALGORITHM_CMA_ES,
    "snes": evolution_pb2.EVOLUTION_ALGORITHM_SNES,
    "differential_evolution": evolution_pb2.EVOLUTION_ALGORITHM_DIFFERENTIAL_EVOLUTION,
    "genetic_algorithm": evolution_pb2.EVOLUTION_ALGORITHM_GENETIC_ALGORITHM,
}


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


def instances(family: str, use: str, count: int, items: int | None = None) -> list[Instance]:
    """``count`` generated instances of ``family`` from ``use``'s seeds."""
    return [generate(family, use, i, items=items) for i in range(count)]


def genome_message(genome_id: str, agent_id: str, params: Sequence[float]) -> common_pb2.AgentGenome:
    names = SEARCH_FIELDS if len(params) == len(SEARCH_FIELDS) else SEARCH_FIELDS + ("first_fit",)
    return common_pb2.AgentGenome(
        id=genome_id, agent_id=agent_id, parameters=list(params), parameter_names=names
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
    """Per-genome, per-instance kernel figures of one or more EvaluateBatch calls (input order)."""

    bins: list[list[int]]
    bounds: list[int]
    fuel_per_item: list[list[float]]
    pairs: int = 0
    failed: int = 0
    batches: int = 0
    wall_ms: float = 0.0
    module_version: int = 0

    def excess(self) -> list[float]:
        """Each genome's score over all the instances (the protocol's aggregate)."""
        return [excess_pct(row, self.bounds) for row in self.bins]

    def instance_excess(self, genome: int) -> list[float]:
        """One genome's excess on each instance (the A/B test's paired observations)."""
        return [excess_pct([b], [l1]) for b, l1 in zip(self.bins[genome], self.bounds, strict=True)]

    def mean_fuel_per_item(self, genome: int) -> float:
        return statistics.fmean(self.fuel_per_item[genome])


def evaluate(
    stubs: Stubs,
    module_name: str,
    genomes: Sequence[common_pb2.AgentGenome],
    inputs: Sequence[Instance],
    batch_id: str,
) -> Evaluation:
    """Every genome on every instance through EvaluateBatch (one call while the limits allow).

    A pair that did not succeed counts as one bin per item, the worst any
    packing can do: a genome that makes the kernel fail must not look good.
    """
    per_call = max(1, min(MAX_BATCH_INPUTS, MAX_BATCH_PAIRS // max(1, len(genomes))))
    encoded = [inst.encode() for inst in inputs]
    result = Evaluation(
        bins=[[] for _ in genomes],
        bounds=[inst.l1_bound for inst in inputs],
        fuel_per_item=[[] for _ in genomes],
    )
    for start in range(0, len(inputs), per_call):
        chunk = encoded[start : start + per_call]
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
            genome, offset = divmod(index, len(chunk))
            items = len(inputs[start + offset].items)
            ok = report.status == common_pb2.RUN_OUTCOME_SUCCESS and "bins_used" in report.metrics
            result.bins[genome].append(int(report.metrics["bins_used"]) if ok else items)
            result.fuel_per_item[genome].append(report.fuel_consumed / items)
            result.failed += 0 if ok else 1
        result.pairs += len(response.reports)
        result.batches += 1
        result.wall_ms += response.wall_ms
        result.module_version = response.module_version
    return result


# --- layer 5: the trigger -----------------------------------------------------------------


def wait_ingested(stubs: Stubs, module_name: str, count: int, timeout_s: float) -> int:
    """Waits until layer 5 holds ``count`` excess reports of the slot (its KPI subscription)."""
    deadline = time.monotonic() + timeout_s
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
                f"Refinement: {seen}/{count} KPI reports arrived from layer 4 within {timeout_s:g} s"
            )
        time.sleep(0.2)


def should_evolve(stubs: Stubs, module_name: str, window: int, min_improvement: float) -> dict[str, Any]:
    decision = call(
        "Refinement ShouldEvolve",
        stubs.refinement.ShouldEvolve,
        refinement_pb2.ShouldEvolveRequest(
            module_name=module_name,
            metric=METRIC,
            direction=MINIMIZE,
            window=window,
            trigger_on_plateau=True,
            min_improvement=min_improvement,
        ),
    )
    return {
        "should_evolve": decision.should_evolve,
        "trigger": refinement_pb2.EvolutionTrigger.Name(decision.trigger).removeprefix("EVOLUTION_TRIGGER_"),
        "reason": decision.reason,
        "current_mean": decision.current_mean,
        "baseline_mean": decision.baseline_mean,
        "p_value": decision.p_value,
        "sample_count": decision.sample_count,
    }


# --- layer 7 -> 8: the grant --------------------------------------------------------------


def begin_run(stubs: Stubs, agent_id: str, population: int, minutes: int) -> genetics_pb2.RunGrantStatus:
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
    """What layer 7 obtained from layer 8 (the loop keeps its runs within it)."""
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


def problem(family: str, training_instances: int, items: int, evaluation_budget: int = 0) -> evolution_pb2.Problem:
    """The search problem; the workload lets layer 6 screen with the twin on the same instances."""
    return evolution_pb2.Problem(
        objective=evolution_pb2.Objective(name=f"binpacking_{family}_excess_pct", direction=MINIMIZE),
        dimensions=[common_pb2.ParameterBounds(name=n, lower=lo, upper=hi) for n, lo, hi in BOUNDS],
        evaluation_budget=evaluation_budget,
        binpacking=evolution_pb2.BinPackingWorkload(
            family=family, training_instances=training_instances, items=items
        ),
    )


def select_algorithm(stubs: Stubs, search: evolution_pb2.Problem, strategy: str) -> dict[str, Any]:
    """Layer 6's choice: its portfolio bandit (``portfolio``) or the strategy asked for.

    ``layer7_ga`` asks for the genetic algorithm's operator arm, which layer 7 runs.
    """
    algorithm = {
        "portfolio": evolution_pb2.EVOLUTION_ALGORITHM_UNSPECIFIED,
        "layer7_ga": evolution_pb2.EVOLUTION_ALGORITHM_GENETIC_ALGORITHM,
        **PORTFOLIO_ALGORITHMS,
    }[strategy]
    choice = call(
        "Evolution SelectAlgorithm",
        stubs.evolution.SelectAlgorithm,
        evolution_pb2.SelectAlgorithmRequest(problem=search, algorithm=algorithm),
    )
    runner = "layer 7 RunGeneration" if strategy == "layer7_ga" else "layer 6 StartRun/Step"
    return {
        "requested": strategy,
        "algorithm": evolution_pb2.EvolutionAlgorithm.Name(choice.algorithm).removeprefix("EVOLUTION_ALGORITHM_"),
        "algorithm_value": choice.algorithm,
        "arm": choice.arm,
        "runner": runner,
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
        first_best=run.generations[0]["best_excess_pct"],
        final_best=run.best_excess,
        evaluations=max(1, run.evaluations),
        direction=MINIMIZE,
    )
    response = call(
        "Evolution ReportOutcome",
        stubs.evolution.ReportOutcome,
        evolution_pb2.ReportOutcomeRequest(
            problem_class=strategy["problem_class"],
            algorithm=strategy["algorithm_value"],
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


# --- the generations (layer 6 ask/tell, or layer 7's GA) ----------------------------------


@dataclass
class Budget:
    """When the evolution stops: generation counts, the loop's time and the grant's wall time."""

    screen_generations: int
    generations: int
    deadline: float  # time.monotonic() value

    def time_left(self) -> bool:
        return time.monotonic() < self.deadline


@dataclass
class EvolutionRun:
    """What the generations produced; ``best`` is always a layer-4 measurement."""

    generations: list[dict[str, Any]] = field(default_factory=list)
    evaluations: int = 0
    screened: int = 0
    failed_pairs: int = 0
    stop_reason: str = ""
    best: common_pb2.AgentGenome | None = None
    best_excess: float = math.inf
    #: The stored generation a layer-7 run started from (0 for a new agent).
    resumed_from_generation: int = 0

    def keep_if_better(self, genome: common_pb2.AgentGenome, excess: float) -> None:
        if excess < self.best_excess:
            self.best, self.best_excess = genome, excess


def _generation_record(
    generation: int, source: str, excess: Sequence[float], diversity: float, wall_ms: float, evaluations: int
) -> dict[str, Any]:
    return {
        "generation": generation,
        "source": source,
        "best_excess_pct": min(excess),
        "mean_excess_pct": statistics.fmean(excess),
        "diversity": diversity,
        "wall_ms": wall_ms,
        "evaluations": evaluations,
    }


def evolve_with_layer6(
    stubs: Stubs,
    *,
    module_name: str,
    agent_id: str,
    search: evolution_pb2.Problem,
    strategy: dict[str, Any],
    population: int,
    training: Sequence[Instance],
    budget: Budget,
    seed: int,
) -> EvolutionRun:
    """Layer 6 ask/tell: screened generations (ScreenStep, the twin), then measured ones.

    A measured generation's fitness is ONE layer-4 EvaluateBatch of the whole
    population on the training instances; its best member is the run's
    candidate when it beats the best measured so far. Screened generations are
    cheap and exact (the twin's bin counts are the kernel's), and the last one's
    best is measured through layer 4 before it can become the candidate.
    """
    run = EvolutionRun()
    asked = call(
        "Evolution StartRun",
        stubs.evolution.StartRun,
        evolution_pb2.StartRunRequest(
            problem=search, algorithm=strategy["algorithm_value"], population_size=population, seed=seed
        ),
        timeout=300.0,
    )
    generation = 0
    while generation < budget.screen_generations + budget.generations:
        if not budget.time_left():
            run.stop_reason = f"the loop's time ran out after {generation} generations"
            break
        started = time.monotonic()
        members = [
            genome_message(f"{agent_id}-g{generation}-m{i}", agent_id, m.parameters)
            for i, m in enumerate(asked.members)
        ]
        if generation < budget.screen_generations:
            asked = call(
                "Evolution ScreenStep",
                stubs.evolution.ScreenStep,
                evolution_pb2.ScreenStepRequest(run_id=asked.run_id),
                timeout=300.0,
            )
            summary = asked.last_generation
            run.screened += len(members)
            record = {
                "generation": generation,
                "source": "twin (layer 6 ScreenStep)",
                "best_excess_pct": summary.best_fitness,
                "mean_excess_pct": summary.mean_fitness,
                "diversity": summary.diversity.mean_pairwise_distance,
                "wall_ms": 1000 * (time.monotonic() - started),
                "evaluations": run.evaluations,
            }
        else:
            scored = evaluate(stubs, module_name, members, training, f"{agent_id}.g{generation}")
            if scored.batches != 1:  # parse_args keeps population x training within one batch
                raise LoopFailed(f"a generation took {scored.batches} EvaluateBatch calls, not one")
            excess = scored.excess()
            run.evaluations += scored.pairs
            run.failed_pairs += scored.failed
            best = int(np.argmin(excess))
            run.keep_if_better(members[best], excess[best])
            asked = call(
                "Evolution Step",
                stubs.evolution.Step,
                evolution_pb2.StepRequest(run_id=asked.run_id, fitness=excess),
                timeout=300.0,
            )
            record = _generation_record(
                generation, "layer 4 EvaluateBatch", excess,
                asked.last_generation.diversity.mean_pairwise_distance, scored.wall_ms, run.evaluations,
            )
        run.generations.append(record)
        generation += 1
        if asked.finished:
            run.stop_reason = asked.stop_reason
            break
    else:
        run.stop_reason = f"all {generation} generations ran"
    if asked.HasField("best"):
        # The run's best by its own (possibly screened) fitness, measured through layer 4.
        best = genome_message(f"{agent_id}-run-best", agent_id, asked.best.parameters)
        scored = evaluate(stubs, module_name, [best], training, f"{agent_id}.best")
        run.evaluations += scored.pairs
        run.keep_if_better(best, scored.excess()[0])
    return run


def evolve_with_layer7(
    stubs: Stubs,
    *,
    module_name: str,
    agent_id: str,
    strategy: dict[str, Any],
    population: int,
    training: Sequence[Instance],
    budget: Budget,
    seed: int,
) -> EvolutionRun:
    """Layer 7's GA (RunGeneration with layer 6's operator arm), every generation measured.

    Layer 7 maximises, so it is told the negated excess. It keeps the run
    within its grant: a generation refused (RESOURCE_EXHAUSTED) ends the run.
    Between generations layer 6 SuggestOperators adapts the mutation sigma.
    """
    run = EvolutionRun()
    bounds = [common_pb2.ParameterBounds(name=n, lower=lo, upper=hi) for n, lo, hi in BOUNDS]
    operators = json_format.ParseDict(strategy["operators"], common_pb2.OperatorSettings())
    history = _history(stubs, agent_id)
    members, run.resumed_from_generation = _newest_generation(history)
    # A resumed run starts from the best genome measured (through layer 4) before it.
    for genome in history:
        if genome.metadata.evaluated:
            run.keep_if_better(genome, -genome.metadata.fitness)
    if not members:
        first = call(
            "Genetics RunGeneration",
            stubs.genetics.RunGeneration,
            genetics_pb2.RunGenerationRequest(
                agent_id=agent_id, population_size=population, bounds=bounds, seed=seed, operators=operators
            ),
        )
        members = list(first.population)
    recent: list[common_pb2.GenerationSummary] = []
    for generation in range(run.resumed_from_generation, budget.generations):
        if not budget.time_left():
            run.stop_reason = f"the loop's time ran out at generation {generation}"
            break
        scored = evaluate(stubs, module_name, members, training, f"{agent_id}.g{generation}")
        if scored.batches != 1:
            raise LoopFailed(f"a generation took {scored.batches} EvaluateBatch calls, not one")
        excess = scored.excess()
        run.evaluations += scored.pairs
        run.failed_pairs += scored.failed
        best = int(np.argmin(excess))
        run.keep_if_better(members[best], excess[best])
        request = genetics_pb2.RunGenerationRequest(
            agent_id=agent_id,
            evaluations=[
                genetics_pb2.GenomeEvaluation(genome_id=g.id, fitness=-f)
                for g, f in zip(members, excess, strict=True)
            ],
            seed=seed + generation + 1,
            operators=operators,
        )
        bred = _run_generation(stubs, request)
        if isinstance(bred, str):
            run.stop_reason = f"layer 7 refused generation {generation + 1}: {bred}"
            break
        summary = bred.evaluated_generation
        recent.append(summary)
        run.generations.append(
            _generation_record(
                generation, "layer 4 EvaluateBatch", excess, summary.diversity.mean_pairwise_distance,
                scored.wall_ms, run.evaluations,
            )
        )
        members = list(bred.population)
        operators = call(
            "Evolution SuggestOperators",
            stubs.evolution.SuggestOperators,
            evolution_pb2.SuggestOperatorsRequest(
                bounds=bounds, recent=recent[-5:], current=bred.operators,
                direction=common_pb2.OPTIMIZATION_DIRECTION_MAXIMIZE,
            ),
        )
    else:
        start = run.resumed_from_generation
        run.stop_reason = (
            f"generations {start}..{budget.generations - 1} ran"
            if start < budget.generations
            else f"the stored population is already at generation {start}"
        )
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


def _history(stubs: Stubs, agent_id: str) -> list[common_pb2.AgentGenome]:
    """Every genome layer 7 stored for the agent (a loop restarted on the same
    ``--run-dir`` continues from there instead of starting over)."""
    return list(
        call(
            "Genetics ListGenomeHistory",
            stubs.genetics.ListGenomeHistory,
            genetics_pb2.ListGenomeHistoryRequest(agent_id=agent_id, limit=MAX_BATCH_PAIRS),
        ).genomes
    )


def _newest_generation(history: Sequence[common_pb2.AgentGenome]) -> tuple[list[common_pb2.AgentGenome], int]:
    """The newest stored generation and its number; ([], 0) for a new agent."""
    if not history:
        return [], 0
    newest = max(g.metadata.generation for g in history)
    members = [g for g in history if g.metadata.generation == newest]
    return sorted(members, key=lambda g: g.version), newest


# --- layer 5 (+ 4): the A/B experiment ----------------------------------------------------

#: The experiment designs the loop offers, by flag value.
DESIGNS = {
    "paired": refinement_pb2.EXPERIMENT_DESIGN_PAIRED,
    "sequential": refinement_pb2.EXPERIMENT_DESIGN_PAIRED_SEQUENTIAL,
}


def ab_test(
    stubs: Stubs,
    *,
    module_name: str,
    control: tuple[common_pb2.AgentGenome, int],
    treatment: tuple[common_pb2.AgentGenome, int],
    family: str,
    items: int | None,
    design: str,
    alpha: float,
    effect: float,
    power: float,
    max_fuel_regression: float,
    max_samples: int,
) -> dict[str, Any]:
    """Baseline vs candidate on the same held-out generated instances: a paired experiment.

    Layer 5 plans the size per arm from ``effect`` (Cohen's d), ``alpha`` and
    ``power``; that many instances from the ``ab_holdout`` seeds are packed by
    both genomes (one EvaluateBatch), and each instance's pair of excesses is
    recorded with its fuel per item (the guardrail). The fixed design is
    analysed once all pairs are in; the sequential one after every pair, and it
    stops at the first decision (its always-valid test keeps alpha).
    """
    (base, base_version), (cand, cand_version) = control, treatment
    experiment = call(
        "Refinement CreateExperiment",
        stubs.refinement.CreateExperiment,
        refinement_pb2.CreateExperimentRequest(
            name=f"{module_name}: baseline vs evolved",
            metric=METRIC,
            control=refinement_pb2.Variant(name="baseline", genome_id=base.id, module_version=base_version),
            treatment=refinement_pb2.Variant(name="candidate", genome_id=cand.id, module_version=cand_version),
            alpha=alpha,
            direction=MINIMIZE,
            minimum_detectable_effect=effect,
            power=power,
            design=DESIGNS[design],
            guardrails=[
                refinement_pb2.Guardrail(metric=FUEL_PER_ITEM, direction=MINIMIZE, max_regression=max_fuel_regression)
            ],
        ),
    )
    planned = experiment.min_samples_per_arm
    if planned > max_samples:
        raise LoopFailed(
            f"Refinement CreateExperiment: planned {planned} samples per arm, more than --max-holdout {max_samples}"
        )
    held_out = instances(family, "ab_holdout", planned, items)
    scored = evaluate(stubs, module_name, [base, cand], held_out, f"{module_name}.ab")
    observations = {"baseline": scored.instance_excess(0), "candidate": scored.instance_excess(1)}
    fuel = {"baseline": scored.fuel_per_item[0], "candidate": scored.fuel_per_item[1]}
    analysis = None
    recorded = 0
    for index, inst in enumerate(held_out):
        for arm in ("baseline", "candidate"):
            call(
                "Refinement RecordObservation",
                stubs.refinement.RecordObservation,
                refinement_pb2.RecordObservationRequest(
                    experiment_id=experiment.id,
                    variant_name=arm,
                    value=observations[arm][index],
                    unit_id=inst.name,
                    guardrail_values={FUEL_PER_ITEM: fuel[arm][index]},
                ),
            )
        recorded = index + 1
        if design == "sequential" and recorded >= 2:
            analysis = _analyze(stubs, experiment.id)
            if analysis.decision != refinement_pb2.EXPERIMENT_DECISION_PENDING:
                break
    if design != "sequential" or analysis is None:
        analysis = _analyze(stubs, experiment.id)
    base_mean, cand_mean = analysis.control.mean, analysis.treatment.mean
    return {
        "experiment_id": experiment.id,
        "design": design,
        "planned_samples_per_arm": planned,
        "pairs_recorded": recorded,
        "samples_used_per_arm": analysis.samples_used_per_arm,
        "holdout": f"{family}/ab_holdout/0..{planned - 1}",
        "baseline_mean_excess_pct": base_mean,
        "candidate_mean_excess_pct": cand_mean,
        "mean_difference": analysis.mean_difference,
        "mean_difference_ci": [analysis.mean_difference_ci_low, analysis.mean_difference_ci_high],
        "t_statistic": analysis.t_statistic,
        "p_value": analysis.p_value,
        "wilcoxon_p_value": analysis.wilcoxon.p_value,
        "always_valid_p_value": analysis.sequential.always_valid_p_value if design == "sequential" else None,
        "effect_size": analysis.effect_size,
        "hedges_g": analysis.hedges_g,
        "hedges_g_ci": [analysis.effect_ci_low, analysis.effect_ci_high],
        "alpha": analysis.alpha,
        "guardrails": [
            {
                "metric": g.metric,
                "control_mean": g.control_mean,
                "treatment_mean": g.treatment_mean,
                "regression": g.regression,
                "max_regression": g.max_regression,
                "breached": g.breached,
            }
            for g in analysis.guardrails
        ],
        "decision": refinement_pb2.ExperimentDecision.Name(analysis.decision).removeprefix("EXPERIMENT_DECISION_"),
        "evaluations": scored.pairs,
        "failed_pairs": scored.failed,
        # The per-instance observations, so the verdict can be re-checked.
        "observations": {arm: values[:recorded] for arm, values in observations.items()},
        "fuel_per_item": {arm: values[:recorded] for arm, values in fuel.items()},
    }


def _analyze(stubs: Stubs, experiment_id: str) -> refinement_pb2.ExperimentAnalysis:
    return call(
        "Refinement AnalyzeExperiment",
        stubs.refinement.AnalyzeExperiment,
        refinement_pb2.AnalyzeExperimentRequest(experiment_id=experiment_id),
    )

