"""The main job: all eight layers started once, the plan, then the closed loop, one summary.

``bazel run //tools/main:main_job -- [--summary-out FILE] [--prometheus]`` starts
the eight layer servers as subprocesses (``stack.layer_stack``: one table of the
layers, free loopback ports, each layer wired to the ones it calls, layer 4's
3->4 gate pointed at layer 3), then acts purely as a gRPC client of that one
running stack:

1. Discovery ``Collect`` (CPU, memory, accelerators): the host's observations;
2. Planning ``CreatePlan`` for the goal, sized from those observations;
3. Validation ``ValidatePlan`` of that plan;
4. the plan itself, task by task in dependency order
   (``chimera.plans.executor``): ``validate_module`` (layer 3 ``ValidateModule``
   of the execution kernel's ``.wasm``, digest and required exports checked),
   ``deploy_module`` (layer 4 ``DeployModule`` with that verdict; the server's
   gate asks layer 3 for it; the trust flag is never used), ``run_module``
   (the workload, ``workload_run``: DeployGenome (default genome), the tasks,
   DeployGenome (a second hand-written genome, a hot swap), the same tasks,
   every KPI from StreamKpis) and ``analyze_kpis``. A plan with an operation no
   layer implements stops before any task runs.
5. the closed loop (tools/loop/closed_loop.py) on its own module slot: baseline
   KPIs -> layer 5's trigger -> layer 8's grant -> layer 6's strategy -> layer 7's
   GA with fitness from layer-4 batches -> canary -> A/B test on held-out
   instances -> promote or roll back (the ``closed_loop`` key of the summary).

With ``--prometheus``, Debian's prometheus scrapes all eight layers' metrics
ports from before step 1 to the end (``scrape.watch``); the ``monitoring`` key
holds each target's health and how far ``grpc_server_handled_total`` moved per
layer and code.

It prints one line per layer, the per-genome table and the loop's lines, and
writes the same facts as JSON to ``--summary-out``. Exit status: 0 when every
step succeeded, every task succeeded and every task's KPI arrived (and the
second genome improved quality), the loop ran to a decision, and (with
``--prometheus``) every target was up and every layer's counter moved; 1
otherwise, with a one-line reason; 2 for bad flags; 130 when interrupted.
A layer that dies during the run is restarted on the same port and state
(``--max-restarts`` per layer, with backoff); the ``supervision`` key counts
and lists every restart, and the job fails if a layer's restarts ran out.
Server logs (and the loop's genome store: a rerun on the same ``--run-dir``
resumes it) stay in ``--run-dir``.

With ``--target NAME=HOST:PORT`` for each of the eight layers, the job starts no
servers: it runs the plan and the loop against layers someone else runs (the
images in podman, ``ci/containers.sh``) and leaves them running.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import grpc

import closed_loop
import scrape
import workload_run
from chimera.execution.artifacts import kernel_wasm_bytes
from chimera.framework.entrypoints import from_working_directory, json_safe
from chimera.framework.processes import StackError
from chimera.plans.executor import PlanError, PlanExecutor, PlanRun
from chimera.plans.operations import ModuleFailure, ModuleOperations
from chimera.v1 import (
    common_pb2,
    discovery_pb2,
    discovery_pb2_grpc,
    execution_pb2,
    execution_pb2_grpc,
    planning_pb2,
    planning_pb2_grpc,
    validation_pb2,
    validation_pb2_grpc,
)
from tools.loop import loop_summary
from tools.loop.loop_summary import SummaryError
from tools.main import stack as stack_mod

DEFAULT_GOAL = "Deploy and run the packer module"
DEFAULT_MODULE = "packer"
#: The kernel exports DeployModule and the tasks need; layer 3 checks them.
REQUIRED_EXPORTS = ("chimera_run", "chimera_alloc")
RPC_TIMEOUT_S = 30.0

T = TypeVar("T")


class JobFailed(Exception):
    """A step of the loop failed; the message is the one-line reason."""


@dataclass
class Outcome:
    """What a run produced: exit status, the JSON summary, the workload result and details."""

    status: int
    summary: dict[str, Any]
    workload: workload_run.WorkloadResult | None = None
    details: str = ""


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="main_job", description=__doc__.splitlines()[0])
    p.add_argument("--summary-out", type=Path, help="write the summary as JSON here")
    p.add_argument(
        "--scoreboard-out", type=Path, help="write the loop's bin-packing table (Markdown) here"
    )
    p.add_argument(
        "--run-dir",
        type=Path,
        help="servers' logs and state, the loop's genome store (default: a new temporary directory)",
    )
    p.add_argument("--goal", default=DEFAULT_GOAL, help="the goal given to layer 2")
    p.add_argument("--module-name", default=DEFAULT_MODULE, help="the plan's kernel module slot")
    p.add_argument("--tasks", type=int, default=24, help="tasks per genome (one instance each)")
    p.add_argument(
        "--jobs", type=int, default=30, help="jobs per packing instance of the plan's workload"
    )
    p.add_argument("--concurrency", type=int, default=2, help="layer 4's tasks run at once")
    p.add_argument(
        "--startup-timeout", type=float, default=90.0, help="seconds each server has to serve"
    )
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per genome's workload")
    p.add_argument(
        "--max-restarts",
        type=int,
        default=stack_mod.RestartPolicy().max_restarts,
        help="restarts of a layer that dies (same port and state), per layer; 0: none",
    )
    p.add_argument(
        "--prometheus",
        action="store_true",
        help="Debian's prometheus scrapes every layer during the run (the `monitoring` key)",
    )
    p.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="NAME=HOST:PORT",
        help="a running layer's gRPC address (all eight, or none: then the job starts them)",
    )
    closed_loop.add_arguments(p)
    args = p.parse_args(list(argv))
    if args.max_restarts < 0:
        p.error(f"--max-restarts must be >= 0 (got {args.max_restarts})")
    args.targets = _existing_targets(args.target, p)
    for name in ("tasks", "jobs", "concurrency"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1 (got {getattr(args, name)})")
    for name in ("startup_timeout", "timeout"):
        if not getattr(args, name) > 0:
            p.error(f"--{name.replace('_', '-')} must be > 0 (got {getattr(args, name)})")
    if not args.goal.strip():
        p.error("--goal must not be empty")
    if not args.module_name.strip():
        p.error("--module-name must not be empty")
    closed_loop.check_arguments(args, p)
    if args.module_name.startswith(f"{args.loop_module_prefix}-"):
        p.error("--module-name must not start with --loop-module-prefix (the plan's KPIs would mix in)")
    if args.targets and args.prometheus:
        p.error("--prometheus scrapes the servers the job starts; with --target it starts none")
    args.prometheus_binary = scrape.find_binary() if args.prometheus else None
    if args.prometheus and args.prometheus_binary is None:
        p.error(
            "--prometheus: no `prometheus` on PATH or in /usr/bin "
            "(Debian's: apt-get install prometheus, or tools/bootstrap.sh --optional)"
        )
    from_working_directory(args, ("summary_out", "scoreboard_out", "run_dir"))
    return args


def _existing_targets(values: Sequence[str], p: argparse.ArgumentParser) -> dict[str, str]:
    """``--target`` values as {layer name: address}: every layer of the stack once, or none."""
    targets: dict[str, str] = {}
    for value in values:
        name, _, address = value.partition("=")
        host, _, port = address.rpartition(":")
        if not (host and port.isdigit() and 0 < int(port) < 65536):
            p.error(f"--target {value!r}: NAME=HOST:PORT with a port in 1-65535")
        if name in targets:
            p.error(f"--target: {name} given twice")
        targets[name] = address
    names = [layer.name for layer in stack_mod.LAYERS]
    if targets and sorted(targets) != sorted(names):
        unknown = sorted(set(targets) - set(names))
        missing = [name for name in names if name not in targets]
        p.error(f"--target: every layer once; unknown: {unknown or 'none'}, missing: {missing or 'none'}")
    return targets


@dataclass(frozen=True)
class ExistingLayers:
    """Layers the job did not start (``--target``): their addresses only."""

    addresses: dict[str, str]

    def targets(self) -> dict[str, str]:
        return dict(self.addresses)


@contextmanager
def step(name: str) -> Iterator[None]:
    """Turns a failed RPC into JobFailed naming the step, the status code and the details."""
    try:
        yield
    except grpc.RpcError as exc:
        if isinstance(exc, grpc.Call):
            raise JobFailed(f"{name}: {exc.code().name}: {exc.details()}") from None
        raise JobFailed(f"{name}: {exc}") from None


def call(name: str, rpc: Callable[..., T], request: Any) -> T:
    with step(name):
        return rpc(request, timeout=RPC_TIMEOUT_S)


def _points(batch: discovery_pb2.DataBatch) -> dict[str, float]:
    """Unlabelled points by name (per-core and per-device points carry labels)."""
    return {p.name: p.value for p in batch.points if not p.labels}


def run_plan(
    args: argparse.Namespace,
    layers: stack_mod.LayerStack | ExistingLayers,
    summary: dict[str, Any],
    outcome: Outcome,
) -> None:
    """Steps 1-4 of the module docstring; fills ``summary``; JobFailed on the first failure."""
    channels = {name: grpc.insecure_channel(target) for name, target in layers.targets().items()}
    try:
        discovery = discovery_pb2_grpc.DiscoveryServiceStub(channels["layer1_discovery"])
        planning = planning_pb2_grpc.PlanningServiceStub(channels["layer2_planning"])
        validation = validation_pb2_grpc.ValidationServiceStub(channels["layer3_validation"])
        execution = execution_pb2_grpc.ExecutionServiceStub(channels["layer4_execution"])

        # 1. Layer 1: what the host offers.
        batch = call(
            "Discovery Collect",
            discovery.Collect,
            discovery_pb2.CollectRequest(
                probes=[
                    discovery_pb2.PROBE_CPU,
                    discovery_pb2.PROBE_MEMORY,
                    discovery_pb2.PROBE_ACCELERATORS,
                ]
            ),
        )
        points = _points(batch)
        cores = points.get("cpu.count.usable", points.get("cpu.count.logical"))
        summary["discovery"] = {
            "points": len(batch.points),
            "cores_usable": cores,
            "cores_logical": points.get("cpu.count.logical"),
            "memory_available_bytes": points.get("memory.available"),
            "accelerators": points.get("accelerator.count"),
            "collection_time_ms": batch.collection_time_ms,
        }
        if not cores:
            raise JobFailed("Discovery Collect: no CPU core count among the observations")

        # 2. Layer 2: the goal as a plan, sized from those observations.
        goal = planning_pb2.Goal(
            description=args.goal,
            priority=common_pb2.PRIORITY_HIGH,
            constraints=planning_pb2.GoalConstraints(extra={"module_name": args.module_name}),
        )
        plan = call(
            "Planning CreatePlan",
            planning.CreatePlan,
            planning_pb2.CreatePlanRequest(goal=goal, observations=[batch]),
        )
        summary["planning"] = {
            "plan_id": plan.id,
            "tasks": [t.id for t in plan.tasks],
            "operations": [t.operation for t in plan.tasks],
            "critical_path": list(plan.critical_path),
            "total_duration_ms": plan.total_duration_ms,
            "cpu_cores_per_task": max(
                (t.resource_requirements.cpu_cores for t in plan.tasks), default=0.0
            ),
            "risks": [r.id for r in plan.risks],
        }
        if not plan.tasks:
            raise JobFailed("Planning CreatePlan: the plan has no tasks")

        # 3. Layer 3: the plan; the module comes with the plan's own tasks.
        plan_verdict = call(
            "Validation ValidatePlan",
            validation.ValidatePlan,
            validation_pb2.ValidatePlanRequest(plan=plan, context={"requested_by": "main_job"}),
        )
        summary["validation"] = {"plan": _verdict_json(plan_verdict)}
        if not plan_verdict.is_valid:
            raise JobFailed(f"Validation ValidatePlan: plan rejected: {_findings(plan_verdict)}")

        # 3 -> 4: the plan's tasks, in dependency order, through the 3->4 gate.
        wasm = kernel_wasm_bytes()
        module = ModuleOperations(
            validation,
            execution,
            wasm,
            instance=lambda task: b"",  # run_module runs the workload below, not one task
            required_exports=REQUIRED_EXPORTS,
            default_module=args.module_name,
            context={"requested_by": "main_job"},
            timeout_s=RPC_TIMEOUT_S,
        )

        def validate_module(task: planning_pb2.Task, run: PlanRun) -> Any:
            verdict = module.validate_module(task, run)
            summary["validation"]["module"] = {
                **_verdict_json(verdict),
                "module_name": module.module_name(task),
                "size_bytes": len(wasm),
                "sha256": hashlib.sha256(wasm).hexdigest(),
            }
            return verdict

        def deploy_module(task: planning_pb2.Task, run: PlanRun) -> Any:
            deployment = module.deploy_module(task, run)
            summary["execution"] = {
                "module_name": deployment.module_name,
                "version": deployment.version,
                "module_sha256": deployment.module_sha256,
                "verdict_id": deployment.verdict_id,
                "gate": f"verdict {deployment.verdict_id} from layer 3 (3->4 gate on)",
            }
            return deployment

        def run_module(task: planning_pb2.Task, run: PlanRun) -> workload_run.WorkloadResult:
            result = workload_run.run_workload(
                execution,
                module.module_name(task),
                workload_run.make_instances(args.tasks, args.jobs),
                agent_id="main-job",
                timeout_s=args.timeout,
            )
            outcome.workload = result
            summary["workload"] = result.to_json()
            return result

        def analyze_kpis(task: planning_pb2.Task, run: PlanRun) -> None:
            result: workload_run.WorkloadResult = run.last("run_module")
            if result.failures:
                raise JobFailed(f"Execution workload: {'; '.join(result.failures)}")

        executor = PlanExecutor(
            {
                "validate_module": validate_module,
                "deploy_module": deploy_module,
                "run_module": run_module,
                "analyze_kpis": analyze_kpis,
            }
        )
        with step("Plan execution"):
            try:
                plan_run = executor.run(plan)
            except (PlanError, ModuleFailure) as exc:
                raise JobFailed(f"Plan {plan.id}: {exc}") from None
        summary["plan_execution"] = [
            {"task": r.task_id, "operation": r.operation, "seconds": round(r.seconds, 3)}
            for r in plan_run.results.values()
        ]
    finally:
        for channel in channels.values():
            channel.close()


def _verdict_json(verdict: validation_pb2.ValidationResult) -> dict[str, Any]:
    return {
        "verdict_id": verdict.verdict_id,
        "is_valid": verdict.is_valid,
        "subject_id": verdict.subject_id,
        "findings": [f.rule for f in verdict.findings],
    }


def _findings(verdict: validation_pb2.ValidationResult) -> str:
    return "; ".join(f"{f.rule}: {f.message}" for f in verdict.findings) or "no findings"


def layer_lines(summary: dict[str, Any]) -> list[str]:
    """One line per layer: what it did in this run (only the steps that ran)."""
    targets = {name: info["target"] for name, info in summary.get("layers", {}).items()}
    lines = []
    d = summary.get("discovery")
    if d:
        mem = d.get("memory_available_bytes")
        mem_text = f", {mem / 2**30:.1f} GiB memory available" if mem else ""
        lines.append(
            f"layer 1 discovery  {targets.get('layer1_discovery', '-'):<16} Collect: "
            f"{d['points']} points, {d['cores_usable']:g} usable cores seen{mem_text}"
        )
    p = summary.get("planning")
    if p:
        lines.append(
            f"layer 2 planning   {targets.get('layer2_planning', '-'):<16} CreatePlan "
            f"{p['plan_id']}: {len(p['tasks'])} tasks ({' -> '.join(p['tasks'])}), "
            f"critical path {len(p['critical_path'])} tasks / {p['total_duration_ms'] / 1000:g} s, "
            f"{p['cpu_cores_per_task']:g} cores per task"
        )
    v = summary.get("validation")
    if v:
        parts = [
            f"ValidatePlan {'valid' if v['plan']['is_valid'] else 'INVALID'} "
            f"({v['plan']['verdict_id']})"
        ]
        m = v.get("module")
        if m:
            parts.append(
                f"ValidateModule {m['module_name']} {'valid' if m['is_valid'] else 'INVALID'} "
                f"({m['verdict_id']}, {m['size_bytes']:,} bytes, sha256 {m['sha256'][:12]}...)"
            )
        lines.append(
            f"layer 3 validation {targets.get('layer3_validation', '-'):<16} " + "; ".join(parts)
        )
    e = summary.get("execution")
    if e:
        swaps = summary.get("workload", {}).get("swaps", [])
        swap_text = "".join(f", DeployGenome {s['genome_id']} -> v{s['version']}" for s in swaps)
        lines.append(
            f"layer 4 execution  {targets.get('layer4_execution', '-'):<16} DeployModule "
            f"{e['module_name']} v{e['version']} through the 3->4 gate{swap_text}"
        )
    return lines


#: Called with each loop phase's name as it starts, and the running layers (tests
#: use it to stop a layer in the middle of the loop).
LoopObserver = Callable[[str, stack_mod.LayerStack], None]


def run_on_stack(
    args: argparse.Namespace,
    layers: stack_mod.LayerStack | ExistingLayers,
    summary: dict[str, Any],
    outcome: Outcome,
    on_loop_phase: LoopObserver | None = None,
) -> str:
    """Prometheus (with --prometheus), the plan, the loop; the first failure's reason or ""."""
    reasons: list[str] = []
    with contextlib.ExitStack() as monitoring:
        watch = None
        if args.prometheus_binary is not None:
            summary["monitoring"] = {}
            try:
                watch = monitoring.enter_context(
                    scrape.watch(
                        args.prometheus_binary,
                        layers.metrics_targets(),
                        Path(summary["run_dir"]) / "prometheus",
                        summary["monitoring"],
                    )
                )
            except scrape.PrometheusError as exc:
                return f"monitoring: {exc}"
        try:
            run_plan(args, layers, summary, outcome)
        except JobFailed as exc:
            reasons.append(str(exc))
            summary["closed_loop"] = {
                "ok": False, "reason": "not run: the plan failed", "families": {}, "phases_s": {}
            }
        else:
            observer = None if on_loop_phase is None else (lambda name: on_loop_phase(name, layers))
            print("Plan done; the closed loop on the same layers", flush=True)
            loop = summary["closed_loop"] = closed_loop.run(args, layers.targets(), observer)
            if not loop["ok"]:
                reasons.append(f"closed loop: {loop['reason']}")
        if watch is not None:
            try:
                watch.finish()
            except scrape.PrometheusError as exc:
                reasons.append(f"monitoring: {exc}")
    status = summary.get("monitoring", {}).get("exit_status", 0)
    if status != 0:
        reasons.append(f"monitoring: prometheus exited with status {status} on SIGTERM")
    return reasons[0] if reasons else ""


def run(args: argparse.Namespace, on_loop_phase: LoopObserver | None = None) -> Outcome:
    """Starts the stack, runs the plan and the loop on it, stops the stack (always).

    With ``--target``: the plan and the loop on those layers; nothing started or stopped.
    """
    run_dir = args.run_dir or Path(
        tempfile.mkdtemp(prefix="chimera-main-job-", dir=os.environ.get("TEST_TMPDIR"))
    )
    summary: dict[str, Any] = {"ok": False, "reason": "", "run_dir": str(run_dir), "layers": {}}
    outcome = Outcome(1, summary)
    started = time.monotonic()
    reason = ""
    stopped: dict[str, int] = {}
    crashed: list[str] = []
    if args.targets:
        summary["layers"] = {name: {"target": address, "started_by": "--target"}
                             for name, address in args.targets.items()}
        print(f"Layers 1-{len(args.targets)} at the given --target addresses", flush=True)
        reason = run_on_stack(args, ExistingLayers(args.targets), summary, outcome)
        return _finish(outcome, summary, reason, started)
    try:
        with stack_mod.layer_stack(
            run_dir,
            extra_args={"layer4_execution": ["--concurrency", str(args.concurrency)]},
            startup_timeout=args.startup_timeout,
            restart=stack_mod.RestartPolicy(max_restarts=args.max_restarts),
        ) as layers:
            summary["startup_s"] = round(time.monotonic() - started, 3)
            for name, server in layers.servers.items():
                summary["layers"][name] = {
                    "target": server.target,
                    "metrics_port": server.spec.metrics_port,
                    "log": str(server.log_path),
                    "up": True,
                }
            print(
                f"Layers 1-{len(layers.servers)} SERVING as subprocesses in "
                f"{summary['startup_s']:.1f} s (logs in {run_dir})",
                flush=True,
            )
            reason = run_on_stack(args, layers, summary, outcome, on_loop_phase)
            crashed = [s.name for s in layers.servers.values() if s.process.poll() is not None]
            stopped = layers.processes.stop()
            events = layers.processes.restart_events
            summary["supervision"] = {
                "max_restarts": args.max_restarts,
                "restarts": sum(s.restarts for s in layers.servers.values()),
                "given_up": sorted(s.name for s in layers.servers.values() if s.given_up),
                "events": [event.to_json() for event in events],
            }
            for name, server in layers.servers.items():
                summary["layers"][name]["restarts"] = server.restarts
    except StackError as exc:
        reason = f"starting the layers: {exc.headline}"
        outcome.details = exc.details
    if not reason and crashed:
        reason = f"servers exited during the run: {', '.join(crashed)}"
    unclean = {name: status for name, status in stopped.items() if status != 0}
    if not reason and unclean:
        reason = f"servers did not stop cleanly on SIGTERM (exit status): {unclean}"
    for name, status in stopped.items():
        summary["layers"][name]["exit_status"] = status
    return _finish(outcome, summary, reason, started)


def _finish(outcome: Outcome, summary: dict[str, Any], reason: str, started: float) -> Outcome:
    summary["elapsed_s"] = round(time.monotonic() - started, 3)
    summary["ok"] = not reason
    summary["reason"] = reason
    outcome.summary = json_safe(summary)
    outcome.status = 0 if not reason else 1
    return outcome


def print_summary(outcome: Outcome) -> None:
    print()
    for line in layer_lines(outcome.summary):
        print(line)
    layers = outcome.summary["layers"]
    statuses = [info["exit_status"] for info in layers.values() if "exit_status" in info]
    if statuses:
        clean = sum(1 for status in statuses if status == 0)
        print(f"shutdown: {clean}/{len(statuses)} servers exited 0 on SIGTERM")
    supervision = outcome.summary.get("supervision")
    if supervision and supervision["events"]:
        print(f"supervision: {supervision['restarts']} restart(s)")
        for event in supervision["events"]:
            what = f"restart {event['restart']} SERVING" if event["serving"] else event["error"]
            print(
                f"  {event['name']} exited with status {event['exit_status']} at "
                f"{event['at_s']:.1f} s: {what} after {event['downtime_s']:.1f} s"
            )
    if outcome.workload is not None:
        print()
        for line in workload_run.format_table(outcome.workload):
            print(line)
    loop = outcome.summary.get("closed_loop")
    if loop is not None:
        print()
        print(f"closed loop ({loop.get('elapsed_s', 0):.1f} s):")
        for line in closed_loop.summary_lines(loop):
            print(line)
    if "monitoring" in outcome.summary:
        print()
        print(scrape.summary_line(outcome.summary["monitoring"]))


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """While inside: SIGTERM ends the job like Ctrl-C, so the servers are stopped on the way out.

    The previous handler is restored afterwards (``main`` also runs inside tests).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        with _sigterm_interrupts():
            outcome = run(args)
    except KeyboardInterrupt as exc:
        print(
            f"main_job: interrupted ({exc or 'SIGINT'}); the servers were stopped", file=sys.stderr
        )
        return 130
    print_summary(outcome)
    if args.summary_out is not None:
        try:
            loop_summary.write(args.summary_out, outcome.summary)
        except SummaryError as exc:
            print(f"main_job: the closed loop's summary breaks its schema: {exc}", file=sys.stderr)
            return 1
        print(f"\nSummary JSON: {args.summary_out}")
    table = outcome.summary.get("closed_loop", {}).get("scoreboard")
    if args.scoreboard_out is not None and table is not None:
        args.scoreboard_out.parent.mkdir(parents=True, exist_ok=True)
        args.scoreboard_out.write_text(closed_loop.scoreboard_markdown(table))
        print(f"Scoreboard: {args.scoreboard_out}")
    sys.stdout.flush()
    if outcome.status == 0:
        print(f"main_job: OK ({outcome.summary['elapsed_s']:.1f} s)")
    else:
        if outcome.details:
            print(outcome.details, file=sys.stderr)
        print(f"main_job: FAILED: {outcome.summary['reason']}", file=sys.stderr)
    return outcome.status


if __name__ == "__main__":
    sys.exit(main())
