"""Layer 4 benchmark: per-task cost through the ExecutionService vs wasmtime called directly.

    bazel run //bench/layer4:bench_layer4 -- --out $PWD/bench/results/layer4.json

What is measured (design §5, "layer 4"), all on the execution kernel
(``execution_core_module.wasm``) with a small input (a 10-job packing instance)
and the reference good genome:

* **direct**: the module called with wasmtime in this Python process (a fresh
  store and instance per task, same engine settings as the sandbox: fuel and
  epoch interruption on), at concurrency 1 and 2 (threads);
* **sandbox**: the same through ``Sandbox.run`` in process (limits, epoch
  hook, result decoding), to split the overhead;
* **service**: through the ExecutionService over gRPC on loopback, the server
  in its own process (``--trust-unvalidated-modules``, no layer 3 here), with
  its concurrency set to 1 and 2 and as many closed-loop client threads; a
  task's latency runs from the SubmitTask call to the arrival of its
  KpiReport on StreamKpis;
* **compile**: cold (``wasmtime.Module`` from bytes) vs cached (in-memory
  ``ModuleCache`` hit, and ``Module.deserialize`` of the on-disk ``.cwasm``),
  and the same seen from a client as DeployModule latency.

The overhead ratio is direct tasks/s over service tasks/s (and service p50
over direct p50). Results are JSON with the machine they came from.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc
import wasmtime

from bench.layer4 import harness
from bench.layer4.harness import deploy, machine_info, server_process
from chimera.wasm.guest import decode_result, encode_params
from chimera.execution.artifacts import kernel_wasm_bytes
from chimera.execution.sandbox import Limits, ModuleCache, Sandbox
from chimera.execution.workload import GOOD_GENOME, generate_instance
from chimera.v1 import common_pb2, execution_pb2, execution_pb2_grpc

FUEL = 2_000_000_000
INSTANCE = {"seed": 7, "n_jobs": 10}


# -- statistics and machine info ------------------------------------------------


def summarize(latencies_s: Sequence[float], wall_s: float) -> dict[str, float]:
    ms = sorted(x * 1000.0 for x in latencies_s)
    n = len(ms)
    return {
        "tasks": n,
        "wall_s": round(wall_s, 4),
        "tasks_per_s": round(n / wall_s, 2),
        "p50_ms": round(statistics.median(ms), 4),
        "p99_ms": round(ms[max(math.ceil(0.99 * n) - 1, 0)], 4),
        "mean_ms": round(statistics.fmean(ms), 4),
        "min_ms": round(ms[0], 4),
    }


def timing(samples_s: Sequence[float]) -> dict[str, float]:
    ms = sorted(x * 1000.0 for x in samples_s)
    return {
        "reps": len(ms),
        "p50_ms": round(statistics.median(ms), 4),
        "min_ms": round(ms[0], 4),
        "max_ms": round(ms[-1], 4),
    }


# -- direct wasmtime ----------------------------------------------------------------


def sandbox_engine() -> wasmtime.Engine:
    """An engine configured like the sandbox's (fuel + epoch interruption)."""
    config = wasmtime.Config()
    config.consume_fuel = True
    config.epoch_interruption = True
    return wasmtime.Engine(config)


def direct_call(
    engine: wasmtime.Engine, module: wasmtime.Module, params: bytes, data: bytes
) -> int:
    """One task with plain wasmtime (new store and instance, ABI calls); returns fuel used."""
    store = wasmtime.Store(engine)
    store.set_fuel(FUEL)
    store.set_epoch_deadline(1 << 40)  # nothing ticks the epoch here
    exports = wasmtime.Instance(store, module, []).exports(store)
    memory = exports["memory"]
    assert isinstance(memory, wasmtime.Memory)

    def fn(name: str) -> wasmtime.Func:
        f = exports[name]
        assert isinstance(f, wasmtime.Func)
        return f

    p = fn("chimera_alloc")(store, len(params))
    memory.write(store, params, p)
    i = fn("chimera_alloc")(store, len(data))
    memory.write(store, data, i)
    status = fn("chimera_run")(store, p, len(params), i, len(data))
    if status != 0:
        raise RuntimeError(f"kernel returned status {status}")
    ptr = fn("chimera_result_ptr")(store)
    length = fn("chimera_result_len")(store)
    decode_result(bytes(memory.read(store, ptr, ptr + length)))
    return FUEL - store.get_fuel()


def closed_loop(call: Callable[[], object], tasks: int, concurrency: int) -> dict[str, float]:
    """Runs ``tasks`` calls on ``concurrency`` threads, each call timed."""
    latencies: list[float] = []
    lock = threading.Lock()
    per_thread = [
        tasks // concurrency + (1 if k < tasks % concurrency else 0) for k in range(concurrency)
    ]
    barrier = threading.Barrier(concurrency + 1)

    def worker(count: int) -> None:
        mine = []
        barrier.wait()
        for _ in range(count):
            t0 = time.perf_counter()
            call()
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(c,)) for c in per_thread]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    return summarize(latencies, time.perf_counter() - start)


# -- the service in its own process ------------------------------------------------------


class KpiWaiter:
    """One StreamKpis stream; ``wait(task_id)`` returns when that task's report arrived."""

    def __init__(self, stub: execution_pb2_grpc.ExecutionServiceStub) -> None:
        self._events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self.fuel: list[int] = []
        self.failed: list[str] = []
        request = execution_pb2.StreamKpisRequest(module_name="kernel")
        request.since.FromNanoseconds(time.time_ns())
        self._call = stub.StreamKpis(request)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def expect(self, task_id: str) -> threading.Event:
        event = threading.Event()
        with self._lock:
            self._events[task_id] = event
        return event

    def _read(self) -> None:
        try:
            for report in self._call:
                with self._lock:
                    event = self._events.pop(report.task_id, None)
                if report.status != common_pb2.RUN_OUTCOME_SUCCESS:
                    self.failed.append(report.task_id)
                self.fuel.append(report.fuel_consumed)
                if event is not None:
                    event.set()
        except grpc.RpcError:
            pass

    def close(self) -> None:
        self._call.cancel()
        self._thread.join(5)


def service_run(
    target: str,
    wasm: bytes,
    params: tuple[float, ...],
    data: bytes,
    tasks: int,
    warmup: int,
    concurrency: int,
) -> tuple[dict[str, float], dict[str, float], list[int]]:
    """Deploys twice (cold or disk-cached, then memory-cached), then runs the closed loop."""
    with grpc.insecure_channel(target) as channel:
        stub = execution_pb2_grpc.ExecutionServiceStub(channel)
        first = deploy(stub, wasm)
        again = deploy(stub, wasm)
        stub.DeployGenome(
            execution_pb2.DeployGenomeRequest(
                module_name="kernel",
                genome=common_pb2.AgentGenome(id="good", agent_id="bench", parameters=params),
            ),
            timeout=10,
        )
        waiter = KpiWaiter(stub)
        counter = iter(range(10**9))
        counter_lock = threading.Lock()

        def one_task() -> None:
            with counter_lock:
                task_id = f"c{concurrency}-{next(counter)}"
            done = waiter.expect(task_id)
            stub.SubmitTask(
                execution_pb2.TaskSpec(task_id=task_id, module_name="kernel", input=data),
                timeout=30,
            )
            if not done.wait(30):
                raise RuntimeError(f"no KPI for {task_id}")

        try:
            closed_loop(one_task, warmup, concurrency)
            result = closed_loop(one_task, tasks, concurrency)
        finally:
            waiter.close()
        if waiter.failed:
            raise RuntimeError(f"{len(waiter.failed)} tasks failed, e.g. {waiter.failed[:3]}")
        return result, {"first_deploy_s": first, "repeat_deploy_s": again}, waiter.fuel


# -- main ----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    wasm = kernel_wasm_bytes()
    params = tuple(GOOD_GENOME)
    params_bytes = encode_params(params)
    data = generate_instance(INSTANCE["seed"], INSTANCE["n_jobs"]).encode()
    results: dict[str, Any] = {
        "benchmark": "layer4_execution",
        "schema_version": 1,
        "machine": machine_info(),
        "config": {
            "tasks_per_run": args.tasks,
            "warmup_tasks": args.warmup,
            "service_server": (
                "separate process (python -m chimera.execution.main), gRPC on 127.0.0.1"
            ),
            "service_client": (
                "grpcio sync stub, closed loop: SubmitTask, then wait for the task's "
                "KpiReport on StreamKpis"
            ),
            "module_gate": "--trust-unvalidated-modules (no layer-3 service in the benchmark)",
        },
        "module": {
            "name": "execution_core_module.wasm",
            "bytes": len(wasm),
            "sha256": hashlib.sha256(wasm).hexdigest(),
            "input": (
                f"generate_instance(seed={INSTANCE['seed']}, n_jobs={INSTANCE['n_jobs']}), "
                f"{len(data)} bytes"
            ),
            "genome": "GOOD_GENOME",
        },
    }

    # Compile: cold vs cached.
    print("compile: cold / deserialize / cache hit ...", flush=True)
    engine = sandbox_engine()
    cold = []
    for _ in range(args.compile_reps):
        t0 = time.perf_counter()
        module = wasmtime.Module(engine, wasm)
        cold.append(time.perf_counter() - t0)
    serialized = module.serialize()
    deser = []
    for _ in range(args.compile_reps):
        t0 = time.perf_counter()
        wasmtime.Module.deserialize(engine, serialized)
        deser.append(time.perf_counter() - t0)
    cache = ModuleCache(engine)
    cache.get(wasm)
    hits = []
    for _ in range(50):
        t0 = time.perf_counter()
        cache.get(wasm)
        hits.append(time.perf_counter() - t0)
    compile_results: dict[str, Any] = {
        "cold_compile": timing(cold),
        "disk_cached_deserialize": timing(deser),
        "memory_cache_hit": timing(hits),
    }

    # Direct wasmtime and in-process sandbox.
    tasks_results = []
    fuel = direct_call(engine, module, params_bytes, data)
    for c in (1, 2):
        print(f"direct wasmtime, concurrency {c} ...", flush=True)
        closed_loop(lambda: direct_call(engine, module, params_bytes, data), args.warmup, c)
        r = closed_loop(lambda: direct_call(engine, module, params_bytes, data), args.tasks, c)
        tasks_results.append({"path": "direct_wasmtime", "concurrency": c, **r})
    with Sandbox(tick_ms=5.0) as sandbox:
        compiled = sandbox.compile(wasm)
        limits = Limits(fuel=FUEL)

        def sandboxed() -> None:
            res = sandbox.run(compiled, params, data, limits)
            if not res.ok:
                raise RuntimeError(res.message)

        for c in (1, 2):
            print(f"sandbox in process, concurrency {c} ...", flush=True)
            closed_loop(sandboxed, args.warmup, c)
            r = closed_loop(sandboxed, args.tasks, c)
            tasks_results.append({"path": "sandbox_in_process", "concurrency": c, **r})

    # Through the service.
    deploys: dict[str, list[float]] = {"cold": [], "disk_cached": [], "memory_cached": []}
    service_fuel: set[int] = set()
    with tempfile.TemporaryDirectory(prefix="bench-layer4-") as tmp:
        for c in (1, 2):
            print(f"service over gRPC, concurrency {c} ...", flush=True)
            cache_dir = os.path.join(tmp, f"cache-c{c}")
            with server_process(c, cache_dir, tmp) as target:
                r, d, fuels = service_run(target, wasm, params, data, args.tasks, args.warmup, c)
            tasks_results.append({"path": "service_grpc", "concurrency": c, **r})
            deploys["cold"].append(d["first_deploy_s"])
            deploys["memory_cached"].append(d["repeat_deploy_s"])
            service_fuel.update(fuels)
            # A fresh server on the now-populated cache dir: disk-cached deploy.
            with server_process(c, cache_dir, tmp) as target:
                with grpc.insecure_channel(target) as channel:
                    stub = execution_pb2_grpc.ExecutionServiceStub(channel)
                    deploys["disk_cached"].append(deploy(stub, wasm))
        for rep in range(max(args.compile_reps - 2, 0)):
            cache_dir = os.path.join(tmp, f"cache-extra-{rep}")
            with server_process(1, cache_dir, tmp) as target:
                with grpc.insecure_channel(target) as channel:
                    stub = execution_pb2_grpc.ExecutionServiceStub(channel)
                    deploys["cold"].append(deploy(stub, wasm))
                    deploys["memory_cached"].append(deploy(stub, wasm))
    compile_results["service_deploy_module"] = {k: timing(v) for k, v in deploys.items()}
    compile_results["note"] = (
        "DeployModule latency includes validation, SHA-256, the gate (standalone here) and "
        "the gRPC round trip; 'cold' compiles in a fresh server, 'disk_cached' is a fresh "
        "server whose --cache-dir already holds the .cwasm, 'memory_cached' is a repeat deploy."
    )
    results["compile"] = compile_results
    results["tasks"] = tasks_results
    results["fuel_per_task"] = {"direct": fuel, "service": sorted(service_fuel)}

    def find(path: str, c: int) -> dict[str, Any]:
        return next(t for t in tasks_results if t["path"] == path and t["concurrency"] == c)

    overhead = {}
    for c in (1, 2):
        direct, sand, svc = (
            find("direct_wasmtime", c),
            find("sandbox_in_process", c),
            find("service_grpc", c),
        )
        # Every path runs the same tasks (module, inputs, fuel): only the path differs.
        overhead[f"concurrency_{c}"] = {
            "service_vs_direct_throughput_ratio": same_work_ratio(
                direct["tasks_per_s"] / svc["tasks_per_s"]
            ),
            "service_vs_direct_p50_ratio": same_work_ratio(svc["p50_ms"] / direct["p50_ms"]),
            "service_vs_direct_p99_ratio": same_work_ratio(svc["p99_ms"] / direct["p99_ms"]),
            "sandbox_vs_direct_p50_ratio": same_work_ratio(sand["p50_ms"] / direct["p50_ms"]),
            "service_added_p50_ms": round(svc["p50_ms"] - direct["p50_ms"], 4),
        }
    results["overhead"] = overhead
    results["machine"]["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    return results


def same_work_ratio(value: float) -> dict[str, Any]:
    return {"value": round(value, 3), "same_work": True}


def print_summary(results: dict[str, Any]) -> None:
    m = results["machine"]
    print(
        f"\nLayer 4 benchmark on {m['cpu_model']} ({m['nproc']} CPUs), {m['date']}, "
        f"load {m['loadavg_1m_at_start']} -> {m['loadavg_1m_at_end']}"
    )
    print(f"{'path':<20} {'conc':>4} {'tasks/s':>10} {'p50 ms':>9} {'p99 ms':>9}")
    for t in results["tasks"]:
        print(
            f"{t['path']:<20} {t['concurrency']:>4} {t['tasks_per_s']:>10.1f} "
            f"{t['p50_ms']:>9.3f} {t['p99_ms']:>9.3f}"
        )
    c = results["compile"]
    print(
        f"compile: cold {c['cold_compile']['p50_ms']:.1f} ms, deserialize "
        f"{c['disk_cached_deserialize']['p50_ms']:.2f} ms, "
        f"cache hit {c['memory_cache_hit']['p50_ms']:.3f} ms"
    )
    d = c["service_deploy_module"]
    print(
        f"DeployModule: cold {d['cold']['p50_ms']:.1f} ms, "
        f"disk-cached {d['disk_cached']['p50_ms']:.1f} ms, "
        f"memory-cached {d['memory_cached']['p50_ms']:.1f} ms"
    )
    for k, v in results["overhead"].items():
        print(
            f"overhead {k}: direct/service throughput x{v['service_vs_direct_throughput_ratio']['value']}, "
            f"p50 x{v['service_vs_direct_p50_ratio']['value']} (+{v['service_added_p50_ms']} ms) (same_work: true)"
        )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Layer 4 execution benchmark")
    p.add_argument(
        "--out", help="write the JSON results here (e.g. $PWD/bench/results/layer4.json)"
    )
    p.add_argument("--tasks", type=int, default=2000, help="tasks per measured run")
    p.add_argument("--warmup", type=int, default=100, help="unmeasured tasks before each run")
    p.add_argument("--compile-reps", type=int, default=5)
    args = p.parse_args(argv)
    if args.tasks < 2 or args.warmup < 0 or args.compile_reps < 2:
        p.error("--tasks must be >= 2, --warmup >= 0, --compile-reps >= 2")
    return harness.emit(run(args), args.out, print_summary)


if __name__ == "__main__":
    sys.exit(main())
