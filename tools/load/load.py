"""Sustained load on the running stack: Locust's gRPC users at a fixed rate, RSS over time, stores checked.

``bazel run //tools/load -- --duration 75 --users 6 --rate 12 --out /tmp/load.json``
starts the eight layers (tools/main/stack.py, loopback only, no supervision:
a crash must show, not be healed), creates what the users read (a plan, a
verdict, the kernel with two genome versions, a layer-7 agent under a layer-8
grant, a layer-6 arm), then runs ``users.py`` (Locust, headless, in its own
process) for ``--duration`` seconds: ``--users`` users sending ``--rate``
requests per second in all, a read and a write RPC of every layer. Meanwhile
it samples each server's RSS every ``--rss-interval`` seconds.

It prints p50/p99 per method, the errors by status code and each server's RSS
(first, last, fitted slope), writes all of it with the machine and its load as
JSON (``--out``), and checks, one line each:

* no call failed with UNKNOWN or INTERNAL (other codes are counted, not fatal:
  a refused Allocate on a full pool is an answer), and no user task raised
  (Locust would only log it);
* the rate was sustained (at least ``--min-rate-fraction`` of ``--rate``);
* no server's memory grows without bound: the least-squares slope of its RSS
  after the warm-up (the first ``--warmup`` fraction of the samples) is at
  most ``--max-rss-slope`` MiB per minute;
* every store passes its integrity check after the run: layer 7's SQLite
  (``PRAGMA integrity_check``, the agent's generations complete), layer 4's
  deployment record, layer 8's ledger and layer 5's journal readable;
* layer 7's grant was released (EndRun) and every server stopped.

Exit 0 when every check passed, 1 otherwise, 2 for bad flags (one line).
"""

from __future__ import annotations

import argparse
import base64
import datetime
import importlib.metadata
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
import psutil

from chimera.execution.artifacts import kernel_wasm_bytes
from chimera.execution.workload import GENOME_FIELDS, GOOD_GENOME, generate_instance
from chimera.framework.processes import pid_alive, runfile
from chimera.v1 import (
    common_pb2,
    evolution_pb2,
    evolution_pb2_grpc,
    execution_pb2,
    execution_pb2_grpc,
    genetics_pb2,
    genetics_pb2_grpc,
    planning_pb2,
    planning_pb2_grpc,
    resources_pb2,
    validation_pb2,
    validation_pb2_grpc,
)
from tools.main.stack import layer_stack

MODULE = "load-kernel"
AGENT = "load-agent"
GOAL = "Deploy and run the packer module"
BOUNDS = [(name, -5.0, 5.0) for name in GENOME_FIELDS]
FATAL_CODES = ("UNKNOWN", "INTERNAL")
MIB = 1 << 20


class Usage(Exception):
    """A bad flag: one line, exit 2."""


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="load", description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=75.0, help="seconds of load (10..3600)")
    p.add_argument("--users", type=int, default=6, help="Locust users (1..64)")
    p.add_argument("--rate", type=float, default=12.0, help="requests per second in all (0.5..500)")
    p.add_argument("--rss-interval", type=float, default=2.0, help="seconds between RSS samples")
    p.add_argument("--warmup", type=float, default=0.25,
                   help="fraction of the RSS samples left out of the slope fit [0, 0.9]")
    p.add_argument("--max-rss-slope", type=float, default=4.0,
                   help="MiB per minute a server's fitted RSS slope may reach")
    p.add_argument("--min-rate-fraction", type=float, default=0.5,
                   help="fraction of --rate the users must achieve (0, 1]")
    p.add_argument("--seed", type=int, default=1, help="the users' random choices")
    p.add_argument("--run-dir", type=Path, help="the stack's run directory (default: a new one)")
    p.add_argument("--out", type=Path, help="write the result as JSON here")
    a = p.parse_args(list(argv))
    checks = [
        (10 <= a.duration <= 3600, f"--duration must be in [10, 3600] s (got {a.duration:g})"),
        (1 <= a.users <= 64, f"--users must be in [1, 64] (got {a.users})"),
        (0.5 <= a.rate <= 500, f"--rate must be in [0.5, 500] per second (got {a.rate:g})"),
        (0.2 <= a.rss_interval <= a.duration / 5,
         f"--rss-interval must be in [0.2, duration/5] s (got {a.rss_interval:g})"),
        (0 <= a.warmup <= 0.9, f"--warmup must be in [0, 0.9] (got {a.warmup:g})"),
        (a.max_rss_slope > 0, f"--max-rss-slope must be > 0 (got {a.max_rss_slope:g})"),
        (0 < a.min_rate_fraction <= 1, f"--min-rate-fraction must be in (0, 1] (got {a.min_rate_fraction:g})"),
        (a.seed >= 0, f"--seed must be >= 0 (got {a.seed})"),
    ]
    for ok, message in checks:
        if not ok:
            raise Usage(message)
    if a.out is not None and a.out.exists() and a.out.is_dir():
        raise Usage(f"--out {a.out} is a directory")
    return a


def fixtures(targets: dict[str, str], work: Path) -> dict[str, Any]:
    """What the users read and roll between: created once, before the load."""
    def stub(cls: Any, layer: str) -> Any:
        return cls(grpc.insecure_channel(targets[layer]))

    planning = stub(planning_pb2_grpc.PlanningServiceStub, "layer2_planning")
    validation = stub(validation_pb2_grpc.ValidationServiceStub, "layer3_validation")
    execution = stub(execution_pb2_grpc.ExecutionServiceStub, "layer4_execution")
    evolution = stub(evolution_pb2_grpc.EvolutionServiceStub, "layer6_evolution")
    genetics = stub(genetics_pb2_grpc.GeneticsServiceStub, "layer7_genetics")
    t = 60.0
    plan = planning.CreatePlan(planning_pb2.CreatePlanRequest(goal=planning_pb2.Goal(description=GOAL)), timeout=t)
    wasm = kernel_wasm_bytes()
    verdict = validation.ValidateModule(validation_pb2.ValidateModuleRequest(module_name=MODULE, wasm=wasm), timeout=t)
    if not verdict.is_valid:
        raise RuntimeError(f"layer 3 refused the kernel: {list(verdict.findings)}")
    execution.DeployModule(execution_pb2.DeployModuleRequest(
        module_name=MODULE, wasm=wasm, verdict_id=verdict.verdict_id, activate=True), timeout=t)
    versions = [
        execution.DeployGenome(execution_pb2.DeployGenomeRequest(
            module_name=MODULE,
            genome=common_pb2.AgentGenome(id=f"load-genome-{i}", agent_id=AGENT, parameters=GOOD_GENOME)),
            timeout=t).version
        for i in range(2)
    ]
    grant = genetics.BeginRun(genetics_pb2.BeginRunRequest(agent_id=AGENT, resources=genetics_pb2.RunResources(
        requirements=common_pb2.ResourceRequirements(cpu_cores=0.5), wall_time_seconds=3600,
        population_size=8)), timeout=t)
    first = genetics.RunGeneration(genetics_pb2.RunGenerationRequest(
        agent_id=AGENT, population_size=8, seed=1,
        bounds=[common_pb2.ParameterBounds(name=n, lower=lo, upper=hi) for n, lo, hi in BOUNDS]), timeout=t)
    problem = evolution_pb2.Problem(
        objective=evolution_pb2.Objective(name="load_quality", direction=common_pb2.OPTIMIZATION_DIRECTION_MAXIMIZE),
        dimensions=[common_pb2.ParameterBounds(name=n, lower=lo, upper=hi) for n, lo, hi in BOUNDS],
        evaluation_budget=1000)
    choice = evolution.SelectAlgorithm(evolution_pb2.SelectAlgorithmRequest(
        problem=problem, algorithm=evolution_pb2.EVOLUTION_ALGORITHM_GENETIC_ALGORITHM), timeout=t)
    (work / "kernel.wasm").write_bytes(wasm)
    instance_files = []
    for seed in range(8):
        path = work / f"instance-{seed}.bin"
        path.write_bytes(generate_instance(1000 + seed, 30).encode())
        instance_files.append(str(path))
    return {
        "fixtures": {
            "goal": GOAL, "plan_id": plan.id, "module": MODULE, "verdict_id": verdict.verdict_id,
            "genome_versions": versions, "agent_id": AGENT, "job_id": grant.job.id,
            "genome_ids": [g.id for g in first.population],
            "problem_class": choice.problem_class, "arm": choice.arm,
            # The users' SelectAlgorithm asks about the same problem (serialized, base64).
            "problem": base64.b64encode(problem.SerializeToString()).decode("ascii"),
        },
        "wasm": str(work / "kernel.wasm"),
        "instance_files": instance_files,
    }


class RssSampler:
    """Each server's RSS every ``interval`` seconds on a thread, as (seconds, bytes) per layer."""

    def __init__(self, pids: dict[str, int], interval: float) -> None:
        self.series: dict[str, list[tuple[float, int]]] = {name: [] for name in pids}
        self._processes = {name: psutil.Process(pid) for name, pid in pids.items()}
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._started = 0.0

    def __enter__(self) -> RssSampler:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            at = time.monotonic() - self._started
            for name, process in self._processes.items():
                try:
                    self.series[name].append((round(at, 2), process.memory_info().rss))
                except psutil.Error:
                    pass  # a dead server shows as missing samples and fails elsewhere
            if self._stop.wait(self._interval):
                return


def slope_mib_per_min(samples: list[tuple[float, int]], warmup: float) -> float:
    """Least-squares slope of RSS over time after the warm-up, in MiB per minute."""
    kept = samples[int(len(samples) * warmup):]
    if len(kept) < 3:
        return float("nan")
    n = len(kept)
    mean_t = sum(t for t, _ in kept) / n
    mean_r = sum(r for _, r in kept) / n
    var = sum((t - mean_t) ** 2 for t, _ in kept)
    cov = sum((t - mean_t) * (r - mean_r) for t, r in kept)
    return (cov / var) * 60.0 / MIB if var else float("nan")


def store_checks(run_dir: Path) -> list[tuple[str, bool, str]]:
    out = []
    store = run_dir / "genetics" / "genomes.sqlite"
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
            integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
            short = db.execute(
                "SELECT COUNT(*) FROM generations g WHERE size != "
                "(SELECT COUNT(*) FROM genomes x WHERE x.agent_id = g.agent_id AND x.generation = g.generation)"
            ).fetchone()[0]
        out.append(("layer 7 store integrity", integrity == "ok" and short == 0,
                    f"integrity_check {integrity}; generations with missing genomes: {short}"))
    except sqlite3.Error as exc:
        out.append(("layer 7 store integrity", False, f"{store}: {exc}"))
    for name, path in (("layer 4 deployment record", run_dir / "execution" / "deployments.json"),
                       ("layer 8 ledger", run_dir / "resources" / "ledger.json")):
        try:
            document = json.loads(path.read_text())
            out.append((name, document.get("format") == 1, f"{path.name}: format {document.get('format')}"))
        except (OSError, ValueError) as exc:
            out.append((name, False, f"{path}: {exc}"))
    journal = run_dir / "refinement" / "experiments.jsonl"
    try:
        lines = journal.read_text().splitlines() if journal.exists() else []
        for line in lines:
            json.loads(line)
        out.append(("layer 5 journal", True, f"{len(lines)} events, all readable"))
    except (OSError, ValueError) as exc:
        out.append(("layer 5 journal", False, f"{journal}: {exc}"))
    return out


def machine() -> dict[str, Any]:
    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "unknown"

    return {
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "grpcio": version("grpcio"),
        "locust": version("locust"),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="chimera-load-", dir=os.environ.get("TEST_TMPDIR")))
    result: dict[str, Any] = {"machine": machine(), "config": {
        "duration_s": args.duration, "users": args.users, "rate_per_s": args.rate,
        "rss_interval_s": args.rss_interval, "warmup_fraction": args.warmup,
        "max_rss_slope_mib_per_min": args.max_rss_slope, "seed": args.seed}}
    checks: list[tuple[str, bool, str]] = []
    pids: dict[str, int] = {}
    with layer_stack(run_dir / "stack", metrics=False) as stack:
        pids = {name: server.process.pid for name, server in stack.servers.items()}
        targets = stack.targets()
        work = run_dir / "work"
        work.mkdir(parents=True, exist_ok=True)
        plan = {**fixtures(targets, work), "targets": targets, "users": args.users, "rate": args.rate,
                "duration_s": args.duration, "seed": args.seed}
        (work / "plan.json").write_text(json.dumps(plan))
        users_out = work / "users.json"
        with RssSampler(pids, args.rss_interval) as sampler:
            started = time.monotonic()
            child = subprocess.run(
                [str(runfile("tools/load/users")), str(work / "plan.json"), str(users_out)],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                timeout=args.duration + 120, check=False,
            )
            result["load_wall_s"] = round(time.monotonic() - started, 2)
        (work / "users.log").write_text(child.stdout)
        checks.append(("users ran", child.returncode == 0 and users_out.exists(),
                       f"users.py exit {child.returncode}" + ("" if child.returncode == 0 else
                                                            f": {child.stdout.strip().splitlines()[-1:]}")))
        users = json.loads(users_out.read_text()) if users_out.exists() else {}
        result.update(users)
        ended = genetics_pb2_grpc.GeneticsServiceStub(grpc.insecure_channel(targets["layer7_genetics"])).EndRun(
            genetics_pb2.EndRunRequest(agent_id=AGENT), timeout=60)
        checks.append(("grant released", ended.released and ended.job.status == resources_pb2.JOB_STATUS_FINISHED,
                       f"job {ended.job.id}: {resources_pb2.JobStatus.Name(ended.job.status)}"))
    result["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]

    fatal = {k: v for k, v in users.get("errors_by_code", {}).items() if k.rsplit(" ", 1)[-1] in FATAL_CODES}
    crashed = users.get("user_exceptions", {})
    checks.append(("no user exceptions", bool(users) and not crashed,
                   f"tasks that raised instead of calling: {crashed or 'none'}"))
    checks.append(("no UNKNOWN/INTERNAL", bool(users) and not fatal,
                   f"{users.get('requests', 0)} requests, errors by code: {users.get('errors_by_code') or 'none'}"))
    achieved = users.get("requests", 0) / args.duration
    checks.append(("rate sustained", achieved >= args.min_rate_fraction * args.rate,
                   f"{achieved:.2f}/s achieved of {args.rate:g}/s asked"))
    rss = {}
    for name, samples in sampler.series.items():
        slope = slope_mib_per_min(samples, args.warmup)
        rss[name] = {"samples": len(samples), "first_mib": round(samples[0][1] / MIB, 1) if samples else None,
                     "last_mib": round(samples[-1][1] / MIB, 1) if samples else None,
                     "max_mib": round(max(r for _, r in samples) / MIB, 1) if samples else None,
                     "slope_mib_per_min": round(slope, 3), "series": samples}
    result["rss"] = rss
    grows = {n: r["slope_mib_per_min"] for n, r in rss.items()
             if not r["slope_mib_per_min"] <= args.max_rss_slope}  # NaN (too few samples) fails too
    checks.append(("memory bounded", not grows,
                   f"RSS slopes above {args.max_rss_slope:g} MiB/min: {grows or 'none'}"))
    checks.extend(store_checks(run_dir / "stack"))
    alive = sorted(pid for pid in pids.values() if pid_alive(pid))
    checks.append(("every server stopped", bool(pids) and not alive, f"{len(pids)} servers, alive: {alive or 'none'}"))
    result["checks"] = [{"check": n, "ok": ok, "detail": d} for n, ok, d in checks]
    result["ok"] = all(ok for _, ok, _ in checks)
    return result


def print_result(result: dict[str, Any]) -> None:
    print(f"{'method':34} {'requests':>8} {'fail':>5} {'p50 ms':>8} {'p99 ms':>8} {'rate/s':>7}")
    for name, m in result.get("methods", {}).items():
        print(f"{name:34} {m['requests']:>8} {m['failures']:>5} {m['p50_ms']:>8.1f} {m['p99_ms']:>8.1f}"
              f" {m['rate_per_s']:>7.2f}")
    print(f"\n{'server':20} {'first MiB':>9} {'last MiB':>9} {'max MiB':>8} {'slope MiB/min':>13}")
    for name, r in result.get("rss", {}).items():
        print(f"{name:20} {r['first_mib']!s:>9} {r['last_mib']!s:>9} {r['max_mib']!s:>8} {r['slope_mib_per_min']:>13}")
    print()
    for c in result["checks"]:
        print(f"  {'ok  ' if c['ok'] else 'FAIL'} {c['check']}: {c['detail']}")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
    except Usage as exc:
        print(f"load: {exc}", file=sys.stderr)
        return 2
    result = run(args)
    print_result(result)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"load: {'OK' if result['ok'] else 'FAILED'} ({result.get('requests', 0)} requests in "
          f"{args.duration:g} s, load average {result['loadavg_at_end'][0]})")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
