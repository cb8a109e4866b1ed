"""Layer 4 batch benchmark: a population evaluation through EvaluateBatch vs the Sandbox in process.

    bazel run //bench/layer4:bench_batch -- --out $PWD/bench/results/layer4_batch.json

One population evaluation = G genomes (the reference good genome, perturbed
with a fixed seed) x I packing instances (``generate_instance``, J jobs each)
on the execution kernel (``execution_core_module.wasm``), default 64 x 8 = 512
pairs. Measured in one run, each the median of ``--repeats`` repetitions after
one unmeasured warm-up, the four paths interleaved round by round (rotating
order) so that load from other work falls on all of them alike:

* **in_process** (the anchor): ``Sandbox.run`` on every pair in this Python
  process, with 1 thread and with 2 threads (a thread pool over the pairs);
* **service**: one ``EvaluateBatch`` call over gRPC on loopback, the server in
  its own process (``--trust-unvalidated-modules``, no layer 3 here) with its
  concurrency set to 1 and to 2; the time runs from the call to its reply
  (which holds all 512 KPI reports, also published on the KPI stream).

The ratio is service time over in-process time at the same thread count
(target <= 1.5). Every pair's fuel through the service must equal its fuel in
process (same module, same genome, same input): the run fails otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

from bench.layer4 import harness
from bench.layer4.harness import deploy, machine_info, server_process
from chimera.execution.artifacts import kernel_wasm_bytes
from chimera.execution.sandbox import Limits, Sandbox
from chimera.execution.workload import GOOD_GENOME, generate_instance
from chimera.v1 import common_pb2, execution_pb2, execution_pb2_grpc

TARGET_RATIO = 1.5
THREADS = (1, 2)
#: Generous per-pair limits: no pair of this workload comes near them.
LIMITS = Limits(fuel=2_000_000_000, memory_bytes=64 * 1024 * 1024, timeout_ms=10_000.0)


def population(count: int, seed: int) -> list[tuple[float, ...]]:
    """``count`` genomes: the good genome with Gaussian noise (sigma 0.5) per gene."""
    rng = random.Random(seed)
    return [tuple(g + rng.gauss(0.0, 0.5) for g in GOOD_GENOME) for _ in range(count)]


def interleaved(paths: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Times every path once per round, ``repeats`` rounds, after one unmeasured warm-up each.

    The order rotates each round, so load from other work on the machine falls
    on all paths alike instead of on whichever ran during a busy moment.
    """
    for call in paths.values():
        call()
    names = list(paths)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            t0 = time.perf_counter()
            paths[name]()
            samples[name].append(time.perf_counter() - t0)
    return samples


def in_process(
    sandbox: Sandbox, genomes: Sequence[tuple[float, ...]], inputs: Sequence[bytes], threads: int
) -> list[int]:
    """Runs every pair with ``Sandbox.run`` (genome-major); returns each pair's fuel."""
    module = sandbox.compile(kernel_wasm_bytes())  # a cache hit after the first call
    pairs = [(g, i) for g in genomes for i in inputs]

    def one(pair: tuple[tuple[float, ...], bytes]) -> int:
        result = sandbox.run(module, pair[0], pair[1], LIMITS)
        if not result.ok:
            raise RuntimeError(f"in-process run failed: {result.status} {result.message}")
        return result.fuel_consumed

    if threads == 1:
        return [one(p) for p in pairs]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(one, pairs))


def batch_request(
    genomes: Sequence[tuple[float, ...]], inputs: Sequence[bytes]
) -> execution_pb2.EvaluateBatchRequest:
    return execution_pb2.EvaluateBatchRequest(
        module_name="kernel",
        genomes=[
            common_pb2.AgentGenome(id=f"g{k}", agent_id="bench", parameters=g)
            for k, g in enumerate(genomes)
        ],
        inputs=list(inputs),
        limits=execution_pb2.ExecutionLimits(
            fuel=LIMITS.fuel, memory_bytes=LIMITS.memory_bytes, timeout_ms=int(LIMITS.timeout_ms)
        ),
        batch_timeout_ms=120_000,
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    genomes = population(args.genomes, args.seed)
    inputs = [generate_instance(args.seed + k, args.jobs).encode() for k in range(args.instances)]
    pairs = len(genomes) * len(inputs)
    request = batch_request(genomes, inputs)
    with contextlib.ExitStack() as stack:
        sandbox = stack.enter_context(Sandbox(tick_ms=5.0, default_limits=LIMITS))
        work = stack.enter_context(tempfile.TemporaryDirectory())
        expected = in_process(sandbox, genomes, inputs, 1)
        paths: dict[str, Callable[[], object]] = {}
        last_wall_ms: dict[int, float] = {}
        for threads in THREADS:
            paths[f"in_process/{threads}"] = functools.partial(
                in_process, sandbox, genomes, inputs, threads
            )
            target = stack.enter_context(server_process(threads, work, work))
            channel = stack.enter_context(grpc.insecure_channel(target))
            stub = execution_pb2_grpc.ExecutionServiceStub(channel)
            deploy(stub, kernel_wasm_bytes())
            reply = stub.EvaluateBatch(request, timeout=300)
            if reply.succeeded != pairs or [r.fuel_consumed for r in reply.reports] != expected:
                raise RuntimeError(
                    f"service results differ from in process ({reply.succeeded}/{pairs} ok)"
                )

            def evaluate(
                stub: execution_pb2_grpc.ExecutionServiceStub = stub, threads: int = threads
            ) -> None:
                last_wall_ms[threads] = stub.EvaluateBatch(request, timeout=300).wall_ms

            paths[f"service/{threads}"] = evaluate
        samples = interleaved(paths, args.repeats)
    rows = []
    for name, times in samples.items():
        path, threads = name.split("/")
        rows.append(row(path, int(threads), pairs, times))
    by = {(r["path"], r["threads"]): r for r in rows}
    for threads in THREADS:
        entry = by[("service", threads)]
        # The same pairs, threads and workload in both paths.
        entry["ratio_to_in_process"] = {
            "value": round(entry["median_s"] / by[("in_process", threads)]["median_s"], 3),
            "same_work": True,
        }
        entry["server_wall_ms_last"] = round(last_wall_ms[threads], 2)
    return {
        "benchmark": "layer4_batch",
        "machine": machine_info(),
        "workload": {
            "genomes": len(genomes),
            "instances": len(inputs),
            "jobs_per_instance": args.jobs,
            "pairs": pairs,
            "repeats": args.repeats,
            "seed": args.seed,
            "mean_fuel_per_pair": round(statistics.fmean(expected)),
        },
        "target_ratio": TARGET_RATIO,
        "rows": rows,
        "scaling_1_to_2_threads": {
            path: {"value": round(by[(path, 1)]["median_s"] / by[(path, 2)]["median_s"], 3), "same_work": True}
            for path in ("in_process", "service")
        },
        "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
    }


def row(path: str, threads: int, pairs: int, samples: Sequence[float]) -> dict[str, Any]:
    secs = statistics.median(samples)
    return {
        "path": path,
        "threads": threads,
        "median_s": round(secs, 4),
        "samples_s": [round(s, 4) for s in samples],
        "pairs_per_s": round(pairs / secs, 1),
    }


def print_summary(results: dict[str, Any]) -> None:
    w = results["workload"]
    print(
        f"population evaluation: {w['genomes']} genomes x {w['instances']} instances "
        f"({w['jobs_per_instance']} jobs) = {w['pairs']} pairs, median of {w['repeats']}"
    )
    print(f"{'path':<12}{'threads':>8}{'median s':>11}{'pairs/s':>10}{'ratio':>8}")
    for r in results["rows"]:
        ratio = r.get("ratio_to_in_process")
        shown = f"{ratio['value']:.2f}x" if ratio is not None else "anchor"
        print(f"{r['path']:<12}{r['threads']:>8}{r['median_s']:>11.4f}{r['pairs_per_s']:>10.1f}{shown:>8}")
    s = results["scaling_1_to_2_threads"]
    m = results["machine"]
    print(
        f"speed-up 1 -> 2 threads: in process {s['in_process']['value']:.2f}x, service {s['service']['value']:.2f}x "
        f"({m['nproc']} cores, load {m['loadavg_1m_at_start']} -> {results['loadavg_1m_at_end']}); "
        f"target service <= {results['target_ratio']}x in process"
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Layer 4 batched-evaluation benchmark")
    p.add_argument("--out", help="write the JSON results here")
    p.add_argument("--genomes", type=int, default=64)
    p.add_argument("--instances", type=int, default=8)
    p.add_argument("--jobs", type=int, default=30, help="jobs per packing instance")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    if not (1 <= args.genomes <= 256 and 1 <= args.instances <= 64) or args.repeats < 3:
        p.error("--genomes 1..256, --instances 1..64 (at most 4096 pairs), --repeats >= 3")
    if args.genomes * args.instances > 4096 or args.jobs < 1:
        p.error("at most 4096 pairs per batch; --jobs >= 1")
    return harness.emit(run(args), args.out, print_summary)


if __name__ == "__main__":
    sys.exit(main())
