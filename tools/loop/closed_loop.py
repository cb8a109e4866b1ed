"""The closed loop 4 -> 5 -> 8 -> 6 -> 7 -> 4 -> 5 over the layers' gRPC contracts.

It runs on the stack the main job started (tools/main: all eight layers as
real subprocesses on loopback), after the main job's plan steps, on its own
module slot (``--loop-module-name``). Phases (:mod:`loop_phases`):

1. ``baseline``: layer 3 vets the kernel, layer 4 deploys it and the BASELINE
   genome (a hand-written fixture, best fit in arrival order) and runs it on a
   stream of generated instances; the KPI reports reach layer 5 through its
   StreamKpis subscription.
2. ``trigger``: layer 5 ShouldEvolve (plateau on) says whether to evolve, and why.
3. ``grant``: layer 7 BeginRun asks layer 8 (ScheduleJob); layer 7 keeps the
   run within the grant (population, wall time) and EndRun releases it.
4. ``strategy``: layer 6 SelectAlgorithm picks the GA's operator arm, which
   layer 7 runs (SuggestOperators adapts it between generations); ReportOutcome
   gives layer 6 the run's improvement per evaluation.
5. ``evolve``: layer 7 RunGeneration for G generations, each population scored
   by one layer-4 EvaluateBatch on training instances (fitness = mean quality).
6. ``canary``: layer 7 DeployBest to layer 4 (``--force-candidate bad-fixture``
   deploys the known-bad fixture genome instead, to exercise the rollback).
7. ``ab_test``: layer 5 A/B experiment, baseline vs candidate on held-out
   instances (other seeds), decided once at the planned size; PROMOTE keeps the
   canary, anything else is rolled back with layer 4 RollbackGenome.

:func:`run` returns the loop's summary (the main job's ``closed_loop`` key);
``ok`` means the loop ran to a decision (promote or roll back).
"""

from __future__ import annotations

import argparse
import functools
import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import loop_phases as phases
from chimera.execution.artifacts import kernel_wasm_bytes
from chimera.execution.workload import BAD_GENOME
from chimera.framework.client import ChimeraClient
from chimera.framework.entrypoints import json_safe
from chimera.v1 import (
    evolution_pb2_grpc,
    execution_pb2,
    execution_pb2_grpc,
    genetics_pb2,
    genetics_pb2_grpc,
    refinement_pb2_grpc,
    validation_pb2_grpc,
)
from tools.main import stack

#: The hand-written BASELINE genome (a fixture, not a result): best fit in
#: arrival order, no lookahead, no improvement passes.
BASELINE_GENOME = (1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
BASELINE_ID = "baseline-best-fit"
#: The deliberately worse candidate of ``--force-candidate bad-fixture``.
BAD_FIXTURE_ID = "bad-fixture"
#: Where the canary comes from, by ``--force-candidate``.
CANDIDATE_SOURCES = {"none": "layer 7 DeployBest", "bad-fixture": "the bad fixture, forced"}
#: Seed ranges: baseline stream, GA training and held-out A/B instances never overlap.
STREAM_SEED = 10_000
TRAIN_SEED = 0
HOLDOUT_SEED = 1_000_000
#: The layers the loop talks to (by their names in the main job's stack).
CLIENT_LAYERS = (
    "layer3_validation",
    "layer4_execution",
    "layer5_refinement",
    "layer6_evolution",
    "layer7_genetics",
)
#: The layers that must run: those, and layer 8, whose grants layer 7 obtains itself.
LOOP_LAYERS = CLIENT_LAYERS + ("layer8_resources",)


#: The loop's module slot by default: its own, so the plan's workload KPIs (same
#: kernel, other genomes) never enter the windows layer 5 judges the baseline on.
DEFAULT_LOOP_MODULE = "packer-loop"


def _positive(name: str, value: float, parser: argparse.ArgumentParser) -> None:
    if not value > 0:
        parser.error(f"--{name.replace('_', '-')} must be > 0 (got {value})")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The loop's flags (the main job's parser has them; ``--jobs`` is the main job's)."""
    g = p.add_argument_group("closed loop")
    g.add_argument(
        "--loop-module-name", default=DEFAULT_LOOP_MODULE, help="the loop's kernel module slot"
    )
    g.add_argument("--window", type=int, default=32, help="ShouldEvolve window (the stream is 2x)")
    g.add_argument(
        "--plateau-improvement",
        type=float,
        default=0.1,
        help="ShouldEvolve min_improvement: less gain (and no significant change) is a plateau",
    )
    g.add_argument("--population", type=int, default=16, help="GA population asked of layer 8")
    g.add_argument("--generations", type=int, default=6, help="GA generations")
    g.add_argument("--train-instances", type=int, default=12, help="instances per fitness")
    g.add_argument("--alpha", type=float, default=0.01, help="A/B significance level")
    g.add_argument("--effect", type=float, default=0.8, help="A/B minimum detectable Cohen's d")
    g.add_argument("--power", type=float, default=0.9, help="A/B power at that effect")
    g.add_argument("--max-holdout", type=int, default=256, help="largest planned A/B size per arm")
    g.add_argument("--grant-minutes", type=int, default=10, help="wall time asked of layer 8")
    g.add_argument("--seed", type=int, default=7, help="GA seed")
    g.add_argument(
        "--force-candidate",
        choices=sorted(CANDIDATE_SOURCES),
        default="none",
        help="deploy the known-bad fixture genome as the canary (tests the rollback)",
    )


def check_arguments(args: argparse.Namespace, p: argparse.ArgumentParser) -> None:
    """Exits 2 (``p.error``) with one message for a bad loop flag."""
    positive = ("jobs", "window", "population", "generations", "train_instances", "max_holdout",
                "grant_minutes", "effect", "plateau_improvement")
    for name in positive:
        _positive(name, getattr(args, name), p)
    if not 0 < args.alpha <= 0.5:
        p.error(f"--alpha must be in (0, 0.5] (got {args.alpha})")
    if not 0 < args.power < 1:
        p.error(f"--power must be in (0, 1) (got {args.power})")
    if args.window < 3:
        p.error(f"--window must be >= 3 (got {args.window})")
    if args.train_instances > phases.MAX_BATCH_INPUTS:
        p.error(f"--train-instances must be <= {phases.MAX_BATCH_INPUTS} (one batch a generation)")
    if args.population * args.train_instances > phases.MAX_BATCH_PAIRS:
        p.error(f"--population x --train-instances must be <= {phases.MAX_BATCH_PAIRS}")
    if args.seed < 0:
        p.error(f"--seed must be >= 0 (got {args.seed})")
    if not args.loop_module_name.strip():
        p.error("--loop-module-name must not be empty")


#: Called with each phase's name as it starts (tests use it to stop a layer
#: in the middle of a run).
PhaseObserver = Callable[[str], None]


@contextmanager
def _phase(
    summary: dict[str, Any], on_phase: Callable[[str], None] | None, name: str
) -> Iterator[None]:
    if on_phase is not None:
        on_phase(name)
    started = time.monotonic()
    try:
        yield
    finally:
        summary["phases_s"][name] = round(time.monotonic() - started, 3)


def _stubs(targets: Mapping[str, str]) -> tuple[phases.Stubs, ChimeraClient]:
    """Stubs on the stack's client policy: a layer's supervised restart is a pause."""
    client = ChimeraClient(stack.client_config())
    channels = {name: client.channel_for(targets[name]) for name in CLIENT_LAYERS}
    stubs = phases.Stubs(
        validation=validation_pb2_grpc.ValidationServiceStub(channels["layer3_validation"]),
        execution=execution_pb2_grpc.ExecutionServiceStub(channels["layer4_execution"]),
        refinement=refinement_pb2_grpc.RefinementServiceStub(channels["layer5_refinement"]),
        evolution=evolution_pb2_grpc.EvolutionServiceStub(channels["layer6_evolution"]),
        genetics=genetics_pb2_grpc.GeneticsServiceStub(channels["layer7_genetics"]),
    )
    return stubs, client


def run_loop(
    args: argparse.Namespace,
    stubs: phases.Stubs,
    summary: dict[str, Any],
    on_phase: Callable[[str], None] | None = None,
) -> None:
    """The seven phases; fills ``summary`` as it goes (raises LoopFailed on a failed phase)."""
    phase = functools.partial(_phase, summary, on_phase)
    module = args.loop_module_name
    agent = f"{module}-agent"
    evaluations: dict[str, int] = {}
    summary["evaluations"] = evaluations

    with phase("baseline"):
        summary["kernel"] = phases.deploy_kernel(stubs, module, kernel_wasm_bytes())
        baseline = phases.genome_message(BASELINE_ID, agent, BASELINE_GENOME)
        deployed = phases.call(
            "Execution DeployGenome",
            stubs.execution.DeployGenome,
            execution_pb2.DeployGenomeRequest(module_name=module, genome=baseline),
        )
        stream = phases.instances(STREAM_SEED, 2 * args.window, args.jobs)
        scored = phases.evaluate(stubs, module, [baseline], stream, f"{module}.baseline")
        evaluations["baseline_stream"] = scored.pairs
        summary["baseline"] = {
            "genome_id": BASELINE_ID,
            "parameters": list(BASELINE_GENOME),
            "version": deployed.version,
            "stream_instances": len(stream),
            "stream_mean_quality": scored.means()[0],
            "failed_pairs": scored.failed,
        }
        summary["baseline"]["kpi_reports_at_layer5"] = phases.wait_ingested(
            stubs, module, len(stream), timeout_s=60.0
        )

    with phase("trigger"):
        trigger = summary["trigger"] = phases.should_evolve(
            stubs, module, args.window, args.plateau_improvement
        )
    if not trigger["should_evolve"]:
        summary["outcome"] = {"decision": "NO_EVOLUTION", "reason": trigger["reason"]}
        return

    with phase("grant"):
        grant = summary["resources"] = phases.grant_json(
            phases.begin_run(stubs, agent, args.population, args.grant_minutes)
        )
    population = min(args.population, grant["max_population"])
    try:
        with phase("strategy"):
            strategy = summary["strategy"] = phases.select_algorithm(
                stubs, population * args.generations
            )
            strategy["ran"] = f"layer 7 genetic algorithm with layer 6's arm {strategy['arm']}"
        with phase("evolve"):
            training = phases.instances(TRAIN_SEED, args.train_instances, args.jobs)
            run = phases.evolve(
                stubs,
                module_name=module,
                agent_id=agent,
                population=population,
                generations=args.generations,
                training=training,
                seed=args.seed,
                strategy=strategy,
            )
            strategy["outcome"] = phases.report_outcome(stubs, strategy, run)
            evaluations["evolution"] = run.evaluations
            summary["evolution"] = {
                "resumed_from_generation": run.resumed_from_generation,
                "population": population,
                "training_instances": len(training),
                "generations": run.generations,
                "stop_reason": run.stop_reason,
                "failed_pairs": run.failed_pairs,
                "best_genome_id": run.best.id if run.best else "",
                "best_training_fitness": run.best.metadata.fitness if run.best else math.nan,
            }
    finally:
        grant["released"] = phases.end_run(stubs, agent)

    with phase("canary"):
        candidate, canary = _deploy_candidate(args, stubs, module, agent)
        summary["canary"] = {
            "source": CANDIDATE_SOURCES[args.force_candidate],
            "genome_id": candidate.id,
            "parameters": list(candidate.parameters),
            "version": canary.version,
            "previous_version": canary.previous_version,
        }

    with phase("ab_test"):
        ab = summary["ab_test"] = phases.ab_test(
            stubs,
            module_name=module,
            control=(baseline, deployed.version),
            treatment=(candidate, canary.version),
            alpha=args.alpha,
            effect=args.effect,
            power=args.power,
            holdout_seed=HOLDOUT_SEED,
            jobs=args.jobs,
            max_samples=args.max_holdout,
        )
        evaluations["ab_test"] = ab["evaluations"]
        summary["outcome"] = _decide(
            stubs, module, ab["decision"], deployed.version, canary.version
        )
    evaluations["total"] = sum(v for k, v in evaluations.items() if k != "total")


def _deploy_candidate(
    args: argparse.Namespace, stubs: phases.Stubs, module: str, agent: str
) -> tuple[Any, execution_pb2.Deployment]:
    if args.force_candidate == "bad-fixture":
        genome = phases.genome_message(BAD_FIXTURE_ID, agent, BAD_GENOME)
        deployment = phases.call(
            "Execution DeployGenome",
            stubs.execution.DeployGenome,
            execution_pb2.DeployGenomeRequest(module_name=module, genome=genome),
        )
        return genome, deployment
    best = phases.call(
        "Genetics DeployBest",
        stubs.genetics.DeployBest,
        genetics_pb2.DeployBestRequest(agent_id=agent, module_name=module),
    )
    return best.genome, best.deployment


def _decide(
    stubs: phases.Stubs, module: str, decision: str, baseline_version: int, canary_version: int
) -> dict[str, Any]:
    """PROMOTE keeps the canary; ROLL_BACK and INCONCLUSIVE re-activate the baseline."""
    if decision == "PROMOTE":
        action = "kept the canary"
    else:
        phases.call(
            "Execution RollbackGenome",
            stubs.execution.RollbackGenome,
            execution_pb2.RollbackGenomeRequest(module_name=module, to_version=baseline_version),
        )
        action = "rolled back to the baseline"
    versions = phases.call(
        "Execution ListVersions",
        stubs.execution.ListVersions,
        execution_pb2.ListVersionsRequest(module_name=module),
    )
    return {
        "decision": decision,
        "action": action,
        "canary_version": canary_version,
        "baseline_version": baseline_version,
        "active_version": versions.active_version,
    }


def run(
    args: argparse.Namespace, targets: Mapping[str, str], on_phase: PhaseObserver | None = None
) -> dict[str, Any]:
    """The loop on running layers (gRPC address by layer name); its JSON-safe summary.

    ``ok`` is False with a one-line ``reason`` when a phase failed (an RPC's
    status, or a layer's answer the loop cannot go on with).
    """
    missing = sorted(set(LOOP_LAYERS) - set(targets))
    if missing:
        raise ValueError(f"the closed loop needs layers that are not running: {missing}")
    summary: dict[str, Any] = {"ok": False, "reason": "", "phases_s": {}}
    started = time.monotonic()
    reason = ""
    stubs, client = _stubs(targets)
    try:
        run_loop(args, stubs, summary, on_phase)
    except phases.LoopFailed as exc:
        reason = str(exc)
    finally:
        client.close()
    summary["elapsed_s"] = round(time.monotonic() - started, 3)
    summary["ok"] = not reason
    summary["reason"] = reason
    return json_safe(summary)


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The printable summary: trigger, grant, strategy, generations, A/B result, phases."""
    lines = []
    if "baseline" in summary:
        b = summary["baseline"]
        lines.append(
            f"baseline   {b['genome_id']} v{b['version']}: mean quality "
            f"{b['stream_mean_quality']:.4f} on {b['stream_instances']} stream instances"
        )
    if "trigger" in summary:
        t = summary["trigger"]
        lines.append(f"trigger    {t['trigger']} (evolve={t['should_evolve']}): {t['reason']}")
    if "resources" in summary:
        r = summary["resources"]
        lines.append(
            f"grant      job {r['job_id']}: population <= {r['max_population']}, "
            f"{r['wall_time_seconds']} s, {r['cpu_cores']:g} cores, ${r['cost_usd']:.4f}"
        )
    if "strategy" in summary:
        s = summary["strategy"]
        lines.append(f"strategy   {s['algorithm']} ({s['reason']}); ran: {s['ran']}")
        if s.get("outcome", {}).get("reported"):
            lines.append(
                f"reward     {s['outcome']['reward']:.4f} for arm {s['outcome']['arm']}, "
                "reported to layer 6 (improvement per evaluation)"
            )
    for g in summary.get("evolution", {}).get("generations", []):
        lines.append(
            f"gen {g['generation']:>3}    best {g['best_fitness']:.4f}  "
            f"mean {g['mean_fitness']:.4f}"
            f"  evaluations {g['evaluations']}  batch {g['batch_wall_ms']:.0f} ms"
        )
    if "ab_test" in summary:
        a = summary["ab_test"]
        lines.append(
            f"A/B        held-out n={a['planned_samples_per_arm']}/arm: baseline "
            f"{a['baseline_mean_quality']:.4f} vs candidate {a['candidate_mean_quality']:.4f} "
            f"({_percent(a['relative_improvement'])}, p={a['p_value']:.3g}, "
            f"d={a['effect_size_cohens_d']:.2f}) -> {a['decision']}"
        )
    if "outcome" in summary:
        o = summary["outcome"]
        lines.append(f"outcome    {o['decision']}: {o.get('action', o.get('reason', ''))}")
    if "evaluations" in summary:
        lines.append(f"evaluations {summary['evaluations']}")
    if summary.get("phases_s"):
        lines.append(f"phases (s) {summary['phases_s']}")
    if summary.get("reason"):
        lines.append(f"loop failed: {summary['reason']}")
    return lines


def _percent(fraction: float | None) -> str:
    return "n/a" if fraction is None else f"{fraction:+.1%}"
