"""The closed loop 4 -> 5 -> 8 -> 6 (-> 7) -> 4 -> 5 on online bin packing, over the layers' gRPC contracts.

It runs on the stack the main job started (tools/main: all eight layers as
real subprocesses on loopback), after the main job's plan steps. For each
generator family (``--families``: Weibull like the Weibull 5k set, OR-like like
OR3) it runs these phases (:mod:`loop_phases`) on its own module slot:

1. ``baseline``: layer 3 vets the bin-packing kernel, layer 4 deploys it with
   Best Fit (a published baseline, not a hand-written genome) and packs a
   stream of generated instances; the KPI reports (excess over L1, %) reach
   layer 5 through its StreamKpis subscription.
2. ``trigger``: layer 5 ShouldEvolve (plateau on) says whether to evolve, and why.
3. ``grant``: layer 7 BeginRun asks layer 8 (ScheduleJob); the run keeps to
   the grant (population, wall time) and EndRun releases it.
4. ``strategy``: layer 6 SelectAlgorithm: its portfolio bandit (CMA-ES, SNES,
   DE, the GA) picks the strategy, or ``--strategy`` names one.
5. ``evolve``: generations of ``--population`` genomes; screened ones take
   their fitness from layer 6's JAX twin (ScreenStep), measured ones from ONE
   layer-4 EvaluateBatch each. The candidate is the best genome measured
   through layer 4. ReportOutcome gives layer 6 the run's improvement.
6. ``canary``: layer 4 DeployGenome of the candidate (layer 7 DeployBest when
   layer 7 ran the GA; ``--force-candidate bad-fixture`` deploys a fixture that
   opens a bin per item instead, to exercise the rollback).
7. ``ab_test``: layer 5's paired experiment, Best Fit vs the candidate on the
   same held-out generated instances, with a fuel-per-item guardrail; PROMOTE
   keeps the canary, anything else rolls back to Best Fit.

Then, with every choice made, ``scoreboard`` measures First Fit, Best Fit and
each family's evolved genome on the published sets through layer 4, beside the
published figures, and ``generalisation`` packs fresh instances of 5,000 and
10,000 items. :func:`run` returns the summary (the main job's ``closed_loop``
key); ``ok`` means every family's loop ran to a decision.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import loop_phases as phases
import scoreboard
from chimera.binpacking.genome import BEST_FIT, SEARCH_LEN
from chimera.binpacking.instances import FAMILIES, MAX_ITEMS
from chimera.execution.artifacts import binpacking_wasm_bytes
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

BASELINE_ID = "best-fit"
#: ``--force-candidate bad-fixture``: a test fixture, not a heuristic: its
#: new-bin bias outweighs every other priority, so each item opens a bin.
BAD_FIXTURE_ID = "bad-fixture-bin-per-item"
BAD_FIXTURE = (0.0, 1.0e3) + (0.0,) * (SEARCH_LEN - 2)
#: Where the canary comes from, by ``--force-candidate``.
CANDIDATE_SOURCES = {"none": "the run's best genome, measured through layer 4", "bad-fixture": "the bad fixture, forced"}
STRATEGIES = ("portfolio", *phases.PORTFOLIO_ALGORITHMS, "layer7_ga")
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
#: Each family's module slot is ``<prefix>-<family>``: the plan's workload never shares it.
DEFAULT_MODULE_PREFIX = "binpacking"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The loop's flags (the main job's parser has them)."""
    g = p.add_argument_group("closed loop (online bin packing)")
    g.add_argument("--families", default="weibull,or",
                   help=f"generator families to evolve for, in order (of {sorted(FAMILIES)})")
    g.add_argument("--loop-module-prefix", default=DEFAULT_MODULE_PREFIX,
                   help="module slots are <prefix>-<family>")
    g.add_argument("--items", type=int, default=0,
                   help="items per generated instance; 0 = the family's (Weibull 5,000, OR 500)")
    g.add_argument("--window", type=int, default=16, help="ShouldEvolve window (the stream is 2x)")
    g.add_argument("--plateau-improvement", type=float, default=0.1,
                   help="ShouldEvolve min_improvement: less gain (and no significant change) is a plateau")
    g.add_argument("--strategy", choices=STRATEGIES, default="portfolio",
                   help="portfolio: layer 6's bandit chooses; layer7_ga: layer 7's GA with layer 6's operator arm")
    g.add_argument("--population", type=int, default=256, help="genomes per generation (asked of layer 8)")
    g.add_argument("--screen-generations", type=int, default=0,
                   help="generations screened by layer 6's twin before the measured ones")
    g.add_argument("--generations", type=int, default=400, help="generations measured through layer 4")
    g.add_argument("--evolve-seconds", type=float, default=90.0,
                   help="wall time of each family's evolution (it stops at whichever comes first)")
    g.add_argument("--train-instances", type=int, default=0,
                   help="generated training instances per fitness; 0 = the family's (Weibull 2, OR 16)")
    g.add_argument("--ab-design", choices=sorted(phases.DESIGNS), default="paired",
                   help="layer 5's design: paired (t + Wilcoxon at the planned size) or sequential (mSPRT)")
    g.add_argument("--alpha", type=float, default=0.01, help="A/B significance level")
    g.add_argument("--effect", type=float, default=1.0, help="A/B minimum detectable effect (Cohen's d_z)")
    g.add_argument("--power", type=float, default=0.9, help="A/B power at that effect")
    g.add_argument("--max-holdout", type=int, default=64, help="largest planned A/B size per arm")
    g.add_argument("--max-fuel-regression", type=float, default=0.5,
                   help="guardrail: a candidate whose fuel per item is this fraction worse is vetoed")
    g.add_argument("--generalisation-instances", type=int, default=2,
                   help="fresh instances per size (5,000 and 10,000 items) in the generalisation check; 0 = skip")
    g.add_argument("--grant-minutes", type=int, default=10, help="wall time asked of layer 8")
    g.add_argument("--seed", type=int, default=7, help="the strategy's seed")
    g.add_argument("--force-candidate", choices=sorted(CANDIDATE_SOURCES), default="none",
                   help="deploy the known-bad fixture genome as the canary (tests the rollback)")


def check_arguments(args: argparse.Namespace, p: argparse.ArgumentParser) -> None:
    """Exits 2 (``p.error``) with one message for a bad loop flag."""
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = sorted(set(families) - set(FAMILIES))
    if not families or unknown or len(set(families)) != len(families):
        p.error(f"--families must list distinct families of {sorted(FAMILIES)} (got {args.families!r})")
    args.family_list = families
    for name in ("window", "population", "max_holdout", "grant_minutes", "effect",
                 "plateau_improvement", "evolve_seconds"):
        if not getattr(args, name) > 0:
            p.error(f"--{name.replace('_', '-')} must be > 0 (got {getattr(args, name)})")
    for name in ("screen_generations", "generations", "generalisation_instances", "seed", "items", "train_instances"):
        if getattr(args, name) < 0:
            p.error(f"--{name.replace('_', '-')} must be >= 0 (got {getattr(args, name)})")
    if args.screen_generations + args.generations == 0:
        p.error("--screen-generations + --generations must be > 0")
    if args.items > MAX_ITEMS:
        p.error(f"--items must be <= {MAX_ITEMS} (got {args.items})")
    if not 0 < args.alpha <= 0.5:
        p.error(f"--alpha must be in (0, 0.5] (got {args.alpha})")
    if not 0 < args.power < 1:
        p.error(f"--power must be in (0, 1) (got {args.power})")
    if not 0 < args.max_fuel_regression <= 100:
        p.error(f"--max-fuel-regression must be in (0, 100] (got {args.max_fuel_regression})")
    if args.window < 3:
        p.error(f"--window must be >= 3 (got {args.window})")
    if args.population < 4:
        p.error(f"--population must be >= 4 (got {args.population})")
    for family in families:
        training = args.train_instances or FAMILIES[family].training_instances
        if training > phases.MAX_BATCH_INPUTS:
            p.error(f"--train-instances must be <= {phases.MAX_BATCH_INPUTS} (one batch a generation)")
        if args.population * training > phases.MAX_BATCH_PAIRS:
            p.error(f"--population x training instances ({family}: {training}) must be <= {phases.MAX_BATCH_PAIRS}")
    if args.strategy == "layer7_ga" and args.screen_generations:
        p.error("--screen-generations needs a layer-6 strategy (layer 7's GA is measured every generation)")
    if not args.loop_module_prefix.strip():
        p.error("--loop-module-prefix must not be empty")


#: Called with each phase's name as it starts (tests use it to stop a layer
#: in the middle of a run).
PhaseObserver = Callable[[str], None]


@contextmanager
def _phase(summary: dict[str, Any], on_phase: PhaseObserver | None, name: str) -> Iterator[None]:
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


def run_family(
    args: argparse.Namespace,
    stubs: phases.Stubs,
    family: str,
    summary: dict[str, Any],
    on_phase: PhaseObserver | None = None,
) -> None:
    """The seven phases for one family; fills ``summary`` as it goes (raises LoopFailed)."""
    phase = functools.partial(_phase, summary, on_phase)
    module = f"{args.loop_module_prefix}-{family}"
    agent = f"{module}-agent"
    items = args.items or None
    evaluations: dict[str, int] = {}
    summary.update(family=family, module_name=module, evaluations=evaluations)

    with phase("baseline"):
        summary["kernel"] = phases.deploy_kernel(stubs, module, binpacking_wasm_bytes())
        baseline = phases.genome_message(BASELINE_ID, agent, BEST_FIT)
        deployed = phases.call(
            "Execution DeployGenome",
            stubs.execution.DeployGenome,
            execution_pb2.DeployGenomeRequest(module_name=module, genome=baseline),
        )
        stream = phases.instances(family, "baseline_stream", 2 * args.window, items)
        scored = phases.evaluate(stubs, module, [baseline], stream, f"{module}.baseline")
        evaluations["baseline_stream"] = scored.pairs
        summary["baseline"] = {
            "genome_id": BASELINE_ID,
            "parameters": list(BEST_FIT),
            "version": deployed.version,
            "stream_instances": len(stream),
            "stream_excess_pct": scored.excess()[0],
            "failed_pairs": scored.failed,
        }
        summary["baseline"]["kpi_reports_at_layer5"] = phases.wait_ingested(
            stubs, module, len(stream), timeout_s=60.0
        )

    with phase("trigger"):
        trigger = summary["trigger"] = phases.should_evolve(stubs, module, args.window, args.plateau_improvement)
    if not trigger["should_evolve"]:
        summary["outcome"] = {"decision": "NO_EVOLUTION", "reason": trigger["reason"]}
        return

    with phase("grant"):
        grant = summary["resources"] = phases.grant_json(
            phases.begin_run(stubs, agent, args.population, args.grant_minutes)
        )
    population = min(args.population, grant["max_population"])
    deadline = time.monotonic() + min(args.evolve_seconds, grant["wall_time_seconds"])
    training_count = args.train_instances or FAMILIES[family].training_instances
    training = phases.instances(family, "training", training_count, items)
    try:
        with phase("strategy"):
            search = phases.problem(family, training_count, args.items)
            strategy = summary["strategy"] = phases.select_algorithm(stubs, search, args.strategy)
        with phase("evolve"):
            budget = phases.Budget(args.screen_generations, args.generations, deadline)
            common = dict(module_name=module, agent_id=agent, strategy=strategy, population=population,
                          training=training, budget=budget, seed=args.seed)
            if args.strategy == "layer7_ga":
                run = phases.evolve_with_layer7(stubs, **common)
            else:
                run = phases.evolve_with_layer6(stubs, search=search, **common)
            strategy["outcome"] = phases.report_outcome(stubs, strategy, run)
            evaluations["evolution"] = run.evaluations
            summary["evolution"] = {
                "resumed_from_generation": run.resumed_from_generation,
                "population": population,
                "training": f"{family}/training/0..{len(training) - 1}",
                "items_per_instance": len(training[0].items),
                "generations": run.generations,
                "screened_by_twin": run.screened,
                "stop_reason": run.stop_reason,
                "failed_pairs": run.failed_pairs,
                "best_genome_id": run.best.id if run.best else "",
                "best_parameters": list(run.best.parameters) if run.best else [],
                "best_training_excess_pct": run.best_excess,
            }
    finally:
        grant["released"] = phases.end_run(stubs, agent)
    if run.best is None:
        raise phases.LoopFailed(f"evolution produced no measured genome: {run.stop_reason}")

    with phase("canary"):
        candidate, canary = _deploy_candidate(args, stubs, module, agent, run)
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
            family=family,
            items=items,
            design=args.ab_design,
            alpha=args.alpha,
            effect=args.effect,
            power=args.power,
            max_fuel_regression=args.max_fuel_regression,
            max_samples=args.max_holdout,
        )
        evaluations["ab_test"] = ab["evaluations"]
        summary["outcome"] = _decide(stubs, module, ab["decision"], deployed.version, canary.version)
    evaluations["total"] = sum(v for k, v in evaluations.items() if k != "total")


def _deploy_candidate(
    args: argparse.Namespace, stubs: phases.Stubs, module: str, agent: str, run: phases.EvolutionRun
) -> tuple[Any, execution_pb2.Deployment]:
    if args.force_candidate == "none" and args.strategy == "layer7_ga":
        best = phases.call(
            "Genetics DeployBest",
            stubs.genetics.DeployBest,
            genetics_pb2.DeployBestRequest(agent_id=agent, module_name=module),
        )
        return best.genome, best.deployment
    genome = (
        phases.genome_message(BAD_FIXTURE_ID, agent, BAD_FIXTURE) if args.force_candidate == "bad-fixture" else run.best
    )
    deployment = phases.call(
        "Execution DeployGenome",
        stubs.execution.DeployGenome,
        execution_pb2.DeployGenomeRequest(module_name=module, genome=genome),
    )
    return genome, deployment


def _decide(
    stubs: phases.Stubs, module: str, decision: str, baseline_version: int, canary_version: int
) -> dict[str, Any]:
    """PROMOTE keeps the canary; ROLL_BACK, VETOED and INCONCLUSIVE re-activate the baseline."""
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


def run(args: argparse.Namespace, targets: Mapping[str, str], on_phase: PhaseObserver | None = None) -> dict[str, Any]:
    """The loop on running layers (gRPC address by layer name); its JSON-safe summary.

    ``ok`` is False with a one-line ``reason`` when a family's phase failed (an
    RPC's status, or a layer's answer the loop cannot go on with); the
    families after it do not run, and the scoreboard measures what exists.
    """
    missing = sorted(set(LOOP_LAYERS) - set(targets))
    if missing:
        raise ValueError(f"the closed loop needs layers that are not running: {missing}")
    summary: dict[str, Any] = {"ok": False, "reason": "", "families": {}, "phases_s": {}}
    started = time.monotonic()
    reason = ""
    stubs, client = _stubs(targets)
    try:
        for family in args.family_list:
            family_summary = summary["families"][family] = {"phases_s": {}}
            family_started = time.monotonic()
            try:
                run_family(args, stubs, family, family_summary, on_phase)
            finally:
                family_summary["elapsed_s"] = round(time.monotonic() - family_started, 3)
        evolved = {
            family: s["evolution"]["best_parameters"]
            for family, s in summary["families"].items()
            if s.get("evolution", {}).get("best_parameters")
        }
        measure_module = f"{args.loop_module_prefix}-{args.family_list[0]}"
        with _phase(summary, on_phase, "scoreboard"):
            summary["scoreboard"] = scoreboard.measure(stubs, measure_module, evolved, "scoreboard")
        if args.generalisation_instances:
            with _phase(summary, on_phase, "generalisation"):
                summary["generalisation"] = scoreboard.generalisation(
                    stubs, measure_module, evolved, "generalisation", args.generalisation_instances
                )
    except phases.LoopFailed as exc:
        reason = str(exc)
    finally:
        client.close()
    summary["elapsed_s"] = round(time.monotonic() - started, 3)
    summary["ok"] = not reason
    summary["reason"] = reason
    return json_safe(summary)


def scoreboard_lines(table: Mapping[str, Any]) -> list[str]:
    """The published table: set | First Fit | Best Fit | evolved | FunSearch (published), excess over L1."""
    header = f"{'set':<12} {'First Fit':>10} {'Best Fit':>10} {'evolved':>10} {'FunSearch (published)':>22}"
    lines = [header, "-" * len(header)]
    for row in table["rows"]:
        evolved = "not run" if row["evolved"] is None else f"{row['evolved']:.2f} %"
        lines.append(
            f"{row['set']:<12} {row['first_fit']:>8.2f} % {row['best_fit']:>8.2f} % {evolved:>10} "
            f"{row['published']['funsearch']:>20.2f} %"
        )
    lines.append(f"(excess of bins over the L1 bound; measured by {table['measured_by']}; "
                 "FunSearch: the published figure)")
    return lines


def scoreboard_markdown(table: Mapping[str, Any]) -> str:
    """The same table as Markdown, with where each column comes from."""
    lines = [
        "| set | First Fit | Best Fit | evolved | FunSearch (published) |",
        "|---|---|---|---|---|",
    ]
    for row in table["rows"]:
        evolved = "not run" if row["evolved"] is None else f"{row['evolved']:.2f} %"
        lines.append(
            f"| {row['set']} | {row['first_fit']:.2f} % | {row['best_fit']:.2f} % | {evolved} | "
            f"{row['published']['funsearch']:.2f} % |"
        )
    return "\n".join(lines) + (
        f"\n\nExcess of the bins used over the L1 bound. First Fit, Best Fit and evolved: measured by "
        f"{table['measured_by']}; FunSearch: the published figure ({table['published_source']}).\n"
    )


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The printable summary: per family the phases and decision, then the scoreboard."""
    lines = []
    for family, s in summary.get("families", {}).items():
        lines.append(f"== {family} (slot {s.get('module_name', '?')})")
        if "baseline" in s:
            b = s["baseline"]
            lines.append(f"baseline   Best Fit v{b['version']}: {b['stream_excess_pct']:.3f} % excess on "
                         f"{b['stream_instances']} stream instances")
        if "trigger" in s:
            t = s["trigger"]
            lines.append(f"trigger    {t['trigger']} (evolve={t['should_evolve']}): {t['reason']}")
        if "resources" in s:
            r = s["resources"]
            lines.append(f"grant      job {r['job_id']}: population <= {r['max_population']}, "
                         f"{r['wall_time_seconds']} s, {r['cpu_cores']:g} cores, ${r['cost_usd']:.4f}")
        if "strategy" in s:
            st = s["strategy"]
            lines.append(f"strategy   {st['algorithm']} via {st['runner']} ({st['reason']})")
        if "evolution" in s:
            e = s["evolution"]
            gens = e["generations"]
            if gens:
                first, last = gens[0], gens[-1]
                lines.append(f"evolve     {len(gens)} generations x {e['population']} ({e['screened_by_twin']} "
                             f"screened by the twin): best {first['best_excess_pct']:.3f} % -> "
                             f"{last['best_excess_pct']:.3f} %; candidate {e['best_training_excess_pct']:.3f} % "
                             f"on {e['training']} ({e['stop_reason']})")
        if "ab_test" in s:
            a = s["ab_test"]
            lines.append(f"A/B        {a['design']} on {a['pairs_recorded']} held-out pairs: Best Fit "
                         f"{a['baseline_mean_excess_pct']:.3f} % vs candidate {a['candidate_mean_excess_pct']:.3f} % "
                         f"(p={a['p_value']:.3g}, Wilcoxon p={a['wilcoxon_p_value']:.3g}) -> {a['decision']}")
        if "outcome" in s:
            o = s["outcome"]
            lines.append(f"outcome    {o['decision']}: {o.get('action', o.get('reason', ''))}")
        lines.append(f"phases (s) {s.get('phases_s', {})}")
    if "scoreboard" in summary:
        lines.extend(scoreboard_lines(summary["scoreboard"]))
    for g in summary.get("generalisation", []):
        lines.append(f"generalisation {g['family']} {g['items']} items x {g['instances']}: Best Fit "
                     f"{g['best_fit']:.2f} % vs evolved {g['evolved']:.2f} %")
    if summary.get("reason"):
        lines.append(f"loop failed: {summary['reason']}")
    return lines
