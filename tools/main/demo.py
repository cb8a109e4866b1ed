"""Main-job demo of Layer 4: deploy the kernel, run a workload under two genomes, compare KPIs.

``bazel run //tools/main:demo`` starts the Execution service in this process
on a free loopback port, then acts as an ordinary gRPC client:

1. deploys ``execution_kernel.wasm`` (DeployModule), either through the 3->4
   gate against a layer-3 ValidationService (``--validation-target``: the
   demo asks it for a verdict with ValidateModule first) or, without one, in
   standalone mode (``--trust-unvalidated-modules`` on the server), which the
   output says plainly;
2. deploys a default genome (best fit, no lookahead, no improvement passes)
   with DeployGenome and submits the workload (generated packing instances);
3. hot-swaps to a better genome with DeployGenome and submits the same workload;
4. reads every KpiReport from StreamKpis and prints, per genome: tasks,
   statuses, mean quality, mean fuel and p50 latency.

Exit status 0 only when every task succeeded, every task's KPI arrived, and
the better genome's mean quality is higher; 1 otherwise.
"""

from __future__ import annotations

import argparse
import collections
import logging
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc

from chimera.execution.artifacts import kernel_wasm_bytes
from chimera.execution.gate import ModuleGate, TrustingGate, VerdictGate
from chimera.execution.server import ExecutionServer
from chimera.execution.service import ExecutionOptions
from chimera.execution.workload import GENOME_FIELDS, GOOD_GENOME, generate_instance
from chimera.framework import ServerConfig
from chimera.v1 import (
    common_pb2,
    execution_pb2,
    execution_pb2_grpc,
    validation_pb2,
    validation_pb2_grpc,
)

SLOT = "packer"
AGENT = "demo-agent"
#: Best fit in arrival order: a reasonable hand-written starting point.
DEFAULT_GENOME = (1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
GENOMES = (("default-best-fit", DEFAULT_GENOME), ("evolved-good", GOOD_GENOME))
TERMINAL = {
    common_pb2.TASK_STATUS_SUCCEEDED,
    common_pb2.TASK_STATUS_DEAD_LETTERED,
    common_pb2.TASK_STATUS_CANCELLED,
}


@dataclass
class KpiReader:
    """Collects StreamKpis reports on a thread."""

    call: grpc.Call
    reports: list[common_pb2.KpiReport] = field(default_factory=list)
    error: str = ""
    cond: threading.Condition = field(default_factory=threading.Condition)

    def run(self) -> None:
        try:
            for report in self.call:
                with self.cond:
                    self.reports.append(report)
                    self.cond.notify_all()
        except grpc.RpcError as exc:
            if isinstance(exc, grpc.Call) and exc.code() != grpc.StatusCode.CANCELLED:
                self.error = f"StreamKpis failed: {exc.code()}: {exc.details()}"
        with self.cond:
            self.cond.notify_all()

    def wait_for_tasks(self, task_ids: set[str], timeout: float) -> bool:
        with self.cond:
            return (
                self.cond.wait_for(
                    lambda: task_ids <= {r.task_id for r in self.reports} or bool(self.error),
                    timeout,
                )
                and not self.error
            )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=24, help="tasks per genome (one instance each)")
    p.add_argument("--jobs", type=int, default=40, help="jobs per packing instance")
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument(
        "--validation-target",
        help="host:port of layer 3's ValidationService; without it the demo runs standalone "
        "(server flag --trust-unvalidated-modules)",
    )
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the workload")
    return p.parse_args(argv)


def p50(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def get_verdict(target: str, wasm: bytes) -> str:
    with grpc.insecure_channel(target) as channel:
        stub = validation_pb2_grpc.ValidationServiceStub(channel)
        verdict = stub.ValidateModule(
            validation_pb2.ValidateModuleRequest(module_name=SLOT, wasm=wasm), timeout=30
        )
    if not verdict.is_valid:
        raise SystemExit(f"layer 3 rejected the kernel: {[f.message for f in verdict.findings]}")
    return verdict.verdict_id


def run_demo(args: argparse.Namespace) -> int:
    wasm = kernel_wasm_bytes()
    gate: ModuleGate
    if args.validation_target:
        gate = VerdictGate(args.validation_target)
        verdict_id = get_verdict(args.validation_target, wasm)
        gate_text = f"layer-3 verdict {verdict_id} from {args.validation_target} (3->4 gate ON)"
    else:
        gate = TrustingGate()
        verdict_id = "standalone-unvalidated"
        gate_text = (
            "STANDALONE: --trust-unvalidated-modules (no layer-3 verdict checked; "
            "pass --validation-target to use the gate)"
        )
    options = ExecutionOptions(concurrency=args.concurrency)
    failures: list[str] = []
    with ExecutionServer(ServerConfig(port=0, metrics_port=None), options, gate) as server:
        print(
            f"Layer 4 ExecutionService on {server.target} "
            f"(in-process, concurrency {args.concurrency})"
        )
        print(f"Module gate: {gate_text}")
        channel = grpc.insecure_channel(server.target)
        stub = execution_pb2_grpc.ExecutionServiceStub(channel)
        # `since` replays anything recorded before the stream's subscription
        # is in place, so no report can be missed.
        request = execution_pb2.StreamKpisRequest(module_name=SLOT)
        request.since.FromNanoseconds(time.time_ns())
        reader = KpiReader(stub.StreamKpis(request))
        thread = threading.Thread(target=reader.run, daemon=True)
        thread.start()
        try:
            dep = stub.DeployModule(
                execution_pb2.DeployModuleRequest(
                    module_name=SLOT, wasm=wasm, verdict_id=verdict_id, activate=True
                ),
                timeout=60,
            )
            print(
                f"DeployModule {SLOT} v{dep.version}: {len(wasm)} bytes, "
                f"sha256 {dep.module_sha256[:16]}..."
            )
            instances = [generate_instance(seed, args.jobs).encode() for seed in range(args.tasks)]
            task_genome: dict[str, str] = {}
            e2e: dict[str, list[float]] = collections.defaultdict(list)
            for genome_id, params in GENOMES:
                swap = stub.DeployGenome(
                    execution_pb2.DeployGenomeRequest(
                        module_name=SLOT,
                        genome=common_pb2.AgentGenome(
                            id=genome_id,
                            agent_id=AGENT,
                            parameters=params,
                            parameter_names=GENOME_FIELDS,
                        ),
                    ),
                    timeout=10,
                )
                print(
                    f"DeployGenome {genome_id}: {SLOT} v{swap.version} active "
                    f"(previous v{swap.previous_version})"
                )
                submitted = {}
                for i, instance in enumerate(instances):
                    handle = stub.SubmitTask(
                        execution_pb2.TaskSpec(
                            task_id=f"{genome_id}-{i:03d}",
                            module_name=SLOT,
                            input=instance,
                            agent_id=AGENT,
                            priority=common_pb2.PRIORITY_NORMAL,
                            labels={"genome": genome_id},
                        ),
                        timeout=10,
                    )
                    submitted[handle.task_id] = time.monotonic()
                    task_genome[handle.task_id] = genome_id
                # Wait for this genome's tasks before swapping, so every task
                # of the batch runs on the genome it is attributed to.
                end = time.monotonic() + args.timeout
                pending = set(submitted)
                while pending and time.monotonic() < end:
                    for task_id in list(pending):
                        rec = stub.GetTask(
                            execution_pb2.GetTaskRequest(task_id=task_id), timeout=10
                        )
                        if rec.status in TERMINAL:
                            pending.discard(task_id)
                            e2e[genome_id].append(
                                (rec.finished_at.ToNanoseconds() - rec.enqueued_at.ToNanoseconds())
                                / 1e6
                            )
                    time.sleep(0.01)
                if pending:
                    failures.append(
                        f"{len(pending)} {genome_id} tasks did not finish in {args.timeout}s"
                    )
            if not reader.wait_for_tasks(set(task_genome), timeout=30):
                failures.append(reader.error or "not every task's KPI arrived on StreamKpis")
            statuses = {
                t: common_pb2.TaskStatus.Name(
                    stub.GetTask(execution_pb2.GetTaskRequest(task_id=t), timeout=10).status
                ).removeprefix("TASK_STATUS_")
                for t in task_genome
            }
        finally:
            reader.call.cancel()
            thread.join(5)
            channel.close()
        drops = server.metrics.get("layer4_kpi_drops_total").value()  # type: ignore[union-attr]

    reports = collections.defaultdict(list)
    for r in reader.reports:
        if r.task_id in task_genome:
            reports[r.genome_id].append(r)
    print()
    header = (
        f"{'genome':<18} {'version':>7} {'tasks':>5}  {'statuses':<16} {'mean quality':>12} "
        f"{'mean fuel':>11} {'p50 run ms':>10} {'p50 e2e ms':>10}"
    )
    print(header)
    print("-" * len(header))
    summary = {}
    for genome_id, _ in GENOMES:
        rs = reports.get(genome_id, [])
        counts = collections.Counter(s for t, s in statuses.items() if task_genome[t] == genome_id)
        quality = statistics.fmean(r.metrics["quality"] for r in rs) if rs else float("nan")
        fuel = statistics.fmean(r.fuel_consumed for r in rs) if rs else float("nan")
        versions = sorted({r.module_version for r in rs})
        summary[genome_id] = (quality, fuel)
        status_text = ",".join(f"{k}={v}" for k, v in sorted(counts.items()))
        print(
            f"{genome_id:<18} {','.join(map(str, versions)):>7} {sum(counts.values()):>5}  "
            f"{status_text:<16} "
            f"{quality:>12.4f} {fuel:>11,.0f} {p50([r.latency_ms for r in rs]):>10.3f} "
            f"{p50(e2e[genome_id]):>10.3f}"
        )
        if counts.get("SUCCEEDED", 0) != args.tasks:
            failures.append(f"{genome_id}: not every task succeeded ({status_text})")
        if len(rs) != args.tasks:
            failures.append(f"{genome_id}: {len(rs)} KPI reports for {args.tasks} tasks")
    (q0, f0), (q1, f1) = summary[GENOMES[0][0]], summary[GENOMES[1][0]]
    print()
    print(
        f"KPI reports received: {sum(len(v) for v in reports.values())}/{len(task_genome)} "
        f"(stream drops: {drops:.0f})"
    )
    if q1 > q0:
        print(
            f"Quality {q0:.4f} -> {q1:.4f} ({(q1 / q0 - 1) * 100:+.1f}%) after the hot swap, "
            f"at {f1 / f0:.1f}x the fuel per task."
        )
    else:
        failures.append(f"the better genome did not improve quality ({q0:.4f} -> {q1:.4f})")
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    print("Layer 4 demo: " + ("OK" if not failures else "FAILED"))
    return 0 if not failures else 1


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    if args.tasks < 1 or args.jobs < 1 or args.concurrency < 1:
        print("--tasks, --jobs and --concurrency must be >= 1", file=sys.stderr)
        return 2
    return run_demo(args)


if __name__ == "__main__":
    sys.exit(main())
