"""Online bin packing: the loop's longer search and the evaluators' throughput, in one run.

    bazel run //bench/binpacking:bench_binpacking -- --out $PWD/bench/results/binpacking.json \\
        [--evolve-seconds 600] [--families weibull,or] [--throughput-only]

1. **Throughput** (the same work on each side: the same genomes, the same
   generated Weibull instances, bin counts checked equal): genome-instance
   evaluations per second of the JAX twin (what layer 6's ScreenStep runs),
   of layer 4's EvaluateBatch through the running service (the loop's path),
   and of the kernel in layer 4's sandbox in this process. Ratios are twin
   over each WASM path.
2. **Longer search**: the main job with ``--evolve-seconds`` per family (all
   eight layers, the plan, then the loop), and its published table: First
   Fit, Best Fit and evolved measured through layer 4, FunSearch's published
   figure beside them, plus the generalisation check.

The machine, versions and load go into the JSON with the figures. Exit 2
with one message for a bad flag.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import main_job
from bench.layer4 import harness
from chimera.binpacking import genome, twin
from chimera.binpacking.instances import generate
from chimera.execution.artifacts import binpacking_wasm_bytes
from chimera.execution.sandbox import Sandbox


def _path(value: str) -> Path:
    path = Path(value)
    base = os.environ.get("BUILD_WORKING_DIRECTORY", "")
    return path if path.is_absolute() or not base else Path(base) / path


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench_binpacking", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=_path, required=True, help="results JSON")
    p.add_argument("--evolve-seconds", type=float, default=600.0, help="evolution wall time per family")
    p.add_argument("--families", default="weibull,or", help="families the loop evolves for")
    p.add_argument("--genomes", type=int, default=64, help="genomes in the throughput comparison")
    p.add_argument("--instances", type=int, default=2, help="5,000-item Weibull instances in it")
    p.add_argument("--throughput-only", action="store_true", help="skip the longer search")
    args = p.parse_args(argv)
    if not args.evolve_seconds > 0:
        p.error(f"--evolve-seconds must be > 0 (got {args.evolve_seconds})")
    for name in ("genomes", "instances"):
        if not 1 <= getattr(args, name) <= 64:
            p.error(f"--{name} must be in 1..64 (got {getattr(args, name)})")
    if args.out.exists() and args.out.is_dir():
        p.error(f"--out {args.out} is a directory")
    return args


def throughput(genomes: int, count: int) -> dict[str, Any]:
    """Evaluations per second of the twin, EvaluateBatch and the in-process sandbox, same work."""
    from chimera.v1 import common_pb2, execution_pb2, execution_pb2_grpc
    import grpc

    rng = np.random.default_rng(0)
    points = rng.normal(0.0, 2.0, (genomes, genome.SEARCH_LEN))
    instances = [generate("weibull", "generalisation", 900 + i) for i in range(count)]
    pairs = genomes * count

    twin.bins_used(points, instances)  # compile once, outside the timing
    started = time.perf_counter()
    twin_bins = twin.bins_used(points, instances)
    twin_s = time.perf_counter() - started

    wasm = binpacking_wasm_bytes()
    with Sandbox() as sandbox:
        module = sandbox.compile(wasm)
        started = time.perf_counter()
        sandbox_bins = [[int(sandbox.run(module, list(p), inst.encode()).output.metrics["bins_used"])
                         for inst in instances] for p in points]
        sandbox_s = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as tmp:
        with harness.server_process(2, tmp, tmp) as target, grpc.insecure_channel(target) as channel:
            stub = execution_pb2_grpc.ExecutionServiceStub(channel)
            harness.deploy(stub, wasm)
            request = execution_pb2.EvaluateBatchRequest(
                module_name="kernel",
                genomes=[common_pb2.AgentGenome(id=f"g{i}", agent_id="bench", parameters=list(p))
                         for i, p in enumerate(points)],
                inputs=[inst.encode() for inst in instances],
                batch_id="bench", batch_timeout_ms=120_000,
            )
            started = time.perf_counter()
            response = stub.EvaluateBatch(request, timeout=150)
            service_s = time.perf_counter() - started
    service_bins = [[int(r.metrics["bins_used"]) for r in response.reports[g * count:(g + 1) * count]]
                    for g in range(genomes)]
    same = twin_bins.tolist() == sandbox_bins == service_bins
    if not same:
        raise SystemExit("bench_binpacking: the twin's bin counts differ from the kernel's")
    rates = {"twin": pairs / twin_s, "evaluate_batch": pairs / service_s, "sandbox_in_process": pairs / sandbox_s}
    return {
        "work": f"{genomes} genomes x {count} Weibull instances of 5,000 items (generalisation seeds 900..)",
        "bin_counts_equal": same,
        "evaluations_per_s": {k: round(v, 1) for k, v in rates.items()},
        "ratios": [
            {"name": "twin_over_evaluate_batch", "value": round(rates["twin"] / rates["evaluate_batch"], 3),
             "same_work": True},
            {"name": "twin_over_sandbox_in_process", "value": round(rates["twin"] / rates["sandbox_in_process"], 3),
             "same_work": True},
        ],
        "target": "twin >= 20x the WASM path (CPU)",
    }


def longer_search(evolve_seconds: float, families: str, run_dir: Path) -> dict[str, Any]:
    summary_path = run_dir / "summary.json"
    argv = ["--families", families, "--evolve-seconds", str(evolve_seconds), "--grant-minutes",
            str(int(evolve_seconds // 60) + 5), "--tasks", "2", "--generalisation-instances", "4",
            "--run-dir", str(run_dir / "run"), "--summary-out", str(summary_path)]
    status = main_job.main(argv)
    loop = json.loads(summary_path.read_text())["closed_loop"]
    return {
        "main_job_argv": argv,
        "main_job_exit_status": status,
        "ok": loop["ok"],
        "reason": loop["reason"],
        "scoreboard": loop.get("scoreboard"),
        "generalisation": loop.get("generalisation"),
        "families": {
            name: {
                "strategy": s.get("strategy", {}).get("algorithm"),
                "generations": len(s.get("evolution", {}).get("generations", [])),
                "population": s.get("evolution", {}).get("population"),
                "best_training_excess_pct": s.get("evolution", {}).get("best_training_excess_pct"),
                "best_parameters": s.get("evolution", {}).get("best_parameters"),
                "ab_decision": s.get("ab_test", {}).get("decision"),
                "phases_s": s.get("phases_s"),
            }
            for name, s in loop["families"].items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    result: dict[str, Any] = {"benchmark": "binpacking", "machine": harness.machine_info()}
    result["throughput"] = throughput(args.genomes, args.instances)
    print(json.dumps(result["throughput"], indent=1))
    if not args.throughput_only:
        with tempfile.TemporaryDirectory() as tmp:
            result["search"] = longer_search(args.evolve_seconds, args.families, Path(tmp))
    result["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(f"bench_binpacking: {args.out}")
    return 0 if result.get("search", {}).get("ok", True) else 1


if __name__ == "__main__":
    sys.exit(main())
