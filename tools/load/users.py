"""Locust's gRPC users of the running stack (the child process of ``load.py``).

``users.py PLAN.json RESULT.json`` reads the plan ``load.py`` wrote (every
layer's loopback address, the fixtures it created, users, rate, duration),
runs Locust headless in this process for the duration and writes Locust's
per-method statistics and the errors by status code.

Each user sends at a fixed rate (``constant_throughput``; users x rate/user is
the total), choosing among one read and one write RPC of every layer by the
task weights below. Every call has a deadline and is reported to Locust as a
``grpc`` request named ``<layer service>/<method>``; a failed call counts under
its status code. Locust patches the standard library with gevent when it is
imported, and gRPC is told to cooperate with gevent before any channel exists,
which is why this runs in its own process.
"""

from __future__ import annotations

# Locust first: it monkey-patches the standard library on import.
import locust  # noqa: I001
from locust import User, constant_throughput, task
from locust.env import Environment

import base64
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import grpc
from grpc.experimental import gevent as grpc_gevent
from google.protobuf.timestamp_pb2 import Timestamp

from chimera.v1 import (
    common_pb2,
    discovery_pb2,
    discovery_pb2_grpc,
    evolution_pb2,
    evolution_pb2_grpc,
    execution_pb2,
    execution_pb2_grpc,
    genetics_pb2,
    genetics_pb2_grpc,
    planning_pb2,
    planning_pb2_grpc,
    refinement_pb2,
    refinement_pb2_grpc,
    resources_pb2,
    resources_pb2_grpc,
    validation_pb2,
    validation_pb2_grpc,
)

grpc_gevent.init_gevent()

DEADLINE_S = 10.0
MAXIMIZE = common_pb2.OPTIMIZATION_DIRECTION_MAXIMIZE
ERRORS: Counter[str] = Counter()  # "<method> <CODE>" -> count


class StackUser(User):
    """One client of all eight layers; its plan is set on the class before the run."""

    plan: dict[str, Any] = {}
    wait_time = constant_throughput(1.0)  # replaced from the plan

    def on_start(self) -> None:
        targets = self.plan["targets"]
        self._channels = {name: grpc.insecure_channel(t) for name, t in targets.items()}
        ch = self._channels
        self.discovery = discovery_pb2_grpc.DiscoveryServiceStub(ch["layer1_discovery"])
        self.planning = planning_pb2_grpc.PlanningServiceStub(ch["layer2_planning"])
        self.validation = validation_pb2_grpc.ValidationServiceStub(ch["layer3_validation"])
        self.execution = execution_pb2_grpc.ExecutionServiceStub(ch["layer4_execution"])
        self.refinement = refinement_pb2_grpc.RefinementServiceStub(ch["layer5_refinement"])
        self.evolution = evolution_pb2_grpc.EvolutionServiceStub(ch["layer6_evolution"])
        self.genetics = genetics_pb2_grpc.GeneticsServiceStub(ch["layer7_genetics"])
        self.resources = resources_pb2_grpc.ResourcesServiceStub(ch["layer8_resources"])
        self.rng = random.Random(self.plan["seed"] * 1000 + id(self) % 1000)
        self.fx = self.plan["fixtures"]
        self.problem = evolution_pb2.Problem.FromString(base64.b64decode(self.fx["problem"]))
        self.sequence = 0

    def on_stop(self) -> None:
        for channel in self._channels.values():
            channel.close()

    def call(self, name: str, rpc: Callable[..., Any], request: Any) -> Any:
        started = time.perf_counter()
        error: BaseException | None = None
        response = None
        try:
            response = rpc(request, timeout=DEADLINE_S)
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
            ERRORS[f"{name} {code.name}"] += 1
            error = RuntimeError(f"{code.name}: {exc.details() if isinstance(exc, grpc.Call) else exc}")
        self.environment.events.request.fire(
            request_type="grpc", name=name, response_time=(time.perf_counter() - started) * 1000.0,
            response_length=response.ByteSize() if response is not None else 0,
            exception=error, context={},
        )
        return response

    # --- layer 1 ---------------------------------------------------------
    @task(2)
    def collect(self) -> None:
        self.call("Discovery/Collect", self.discovery.Collect,
                  discovery_pb2.CollectRequest(probes=[discovery_pb2.PROBE_CPU, discovery_pb2.PROBE_MEMORY]))

    @task(2)
    def get_alerts(self) -> None:
        self.call("Discovery/GetAlerts", self.discovery.GetAlerts, discovery_pb2.GetAlertsRequest(limit=50))

    # --- layer 2 ---------------------------------------------------------
    @task(2)
    def create_plan(self) -> None:
        goal = planning_pb2.Goal(description=self.fx["goal"], priority=common_pb2.PRIORITY_NORMAL)
        self.call("Planning/CreatePlan", self.planning.CreatePlan, planning_pb2.CreatePlanRequest(goal=goal))

    @task(2)
    def get_plan(self) -> None:
        self.call("Planning/GetPlan", self.planning.GetPlan, planning_pb2.GetPlanRequest(plan_id=self.fx["plan_id"]))

    # --- layer 3 ---------------------------------------------------------
    @task(1)
    def validate_module(self) -> None:
        self.call("Validation/ValidateModule", self.validation.ValidateModule,
                  validation_pb2.ValidateModuleRequest(module_name=self.fx["module"], wasm=self.plan["wasm_bytes"]))

    @task(2)
    def get_verdict(self) -> None:
        self.call("Validation/GetVerdict", self.validation.GetVerdict,
                  validation_pb2.GetVerdictRequest(verdict_id=self.fx["verdict_id"]))

    # --- layer 4 ---------------------------------------------------------
    @task(2)
    def submit_task(self) -> None:
        instance = self.rng.choice(self.plan["instances"])
        self.call("Execution/SubmitTask", self.execution.SubmitTask,
                  execution_pb2.TaskSpec(module_name=self.fx["module"], input=instance))

    @task(2)
    def list_versions(self) -> None:
        self.call("Execution/ListVersions", self.execution.ListVersions,
                  execution_pb2.ListVersionsRequest(module_name=self.fx["module"]))

    @task(1)
    def rollback_genome(self) -> None:
        # Between the two genome versions: the slot's active version changes, its record does not grow.
        self.call("Execution/RollbackGenome", self.execution.RollbackGenome,
                  execution_pb2.RollbackGenomeRequest(module_name=self.fx["module"],
                                                     to_version=self.rng.choice(self.fx["genome_versions"])))

    # --- layer 5 ---------------------------------------------------------
    @task(2)
    def ingest_kpis(self) -> None:
        now = Timestamp()
        now.GetCurrentTime()
        self.sequence += 1
        report = common_pb2.KpiReport(
            task_id=f"load-{id(self) % 100000}-{self.sequence}", module_name=self.fx["module"],
            module_version=1, latency_ms=self.rng.uniform(1, 5), status=common_pb2.RUN_OUTCOME_SUCCESS,
            metrics={"quality": self.rng.uniform(0.5, 0.9)}, recorded_at=now,
        )
        self.call("Refinement/IngestKpis", self.refinement.IngestKpis, refinement_pb2.KpiBatch(reports=[report]))

    @task(2)
    def should_evolve(self) -> None:
        self.call("Refinement/ShouldEvolve", self.refinement.ShouldEvolve, refinement_pb2.ShouldEvolveRequest(
            module_name=self.fx["module"], metric="quality", direction=MAXIMIZE, window=20,
            trigger_on_plateau=True, min_improvement=0.01))

    # --- layer 6 ---------------------------------------------------------
    @task(2)
    def select_algorithm(self) -> None:
        self.call("Evolution/SelectAlgorithm", self.evolution.SelectAlgorithm, evolution_pb2.SelectAlgorithmRequest(
            problem=self.problem, algorithm=evolution_pb2.EVOLUTION_ALGORITHM_GENETIC_ALGORITHM))

    @task(1)
    def report_outcome(self) -> None:
        self.call("Evolution/ReportOutcome", self.evolution.ReportOutcome, evolution_pb2.ReportOutcomeRequest(
            problem_class=self.fx["problem_class"], algorithm=evolution_pb2.EVOLUTION_ALGORITHM_GENETIC_ALGORITHM,
            arm=self.fx["arm"], reward=self.rng.random()))

    # --- layer 7 ---------------------------------------------------------
    @task(2)
    def get_genome(self) -> None:
        self.call("Genetics/GetGenome", self.genetics.GetGenome,
                  genetics_pb2.GetGenomeRequest(genome_id=self.rng.choice(self.fx["genome_ids"])))

    @task(2)
    def list_history(self) -> None:
        self.call("Genetics/ListGenomeHistory", self.genetics.ListGenomeHistory,
                  genetics_pb2.ListGenomeHistoryRequest(agent_id=self.fx["agent_id"], limit=20))

    # --- layer 8 ---------------------------------------------------------
    @task(2)
    def estimate_cost(self) -> None:
        self.call("Resources/EstimateCost", self.resources.EstimateCost, _small_request())

    @task(1)
    def allocate_and_release(self) -> None:
        allocation = self.call("Resources/Allocate", self.resources.Allocate, _small_request())
        if allocation is not None:
            self.call("Resources/Release", self.resources.Release,
                      resources_pb2.ReleaseRequest(allocation_id=allocation.id))


def _small_request() -> resources_pb2.ResourceRequest:
    return resources_pb2.ResourceRequest(
        requesting_layer=common_pb2.LAYER_EXECUTION,
        requirements=common_pb2.ResourceRequirements(cpu_cores=0.1, memory_bytes=1 << 20),
        duration_minutes=1,
    )


def run(plan: dict[str, Any]) -> dict[str, Any]:
    """Runs the users for the plan's duration; Locust's statistics and the errors by code."""
    plan["wasm_bytes"] = Path(plan["wasm"]).read_bytes()
    plan["instances"] = [Path(p).read_bytes() for p in plan["instance_files"]]
    StackUser.plan = plan
    StackUser.wait_time = constant_throughput(plan["rate"] / plan["users"])
    env = Environment(user_classes=[StackUser])
    runner = env.create_local_runner()
    runner.start(plan["users"], spawn_rate=plan["users"])
    gevent.spawn_later(plan["duration_s"], runner.quit)
    runner.greenlet.join()
    methods = {}
    for (name, _), entry in sorted(env.stats.entries.items()):
        methods[name] = {
            "requests": entry.num_requests,
            "failures": entry.num_failures,
            "p50_ms": entry.get_response_time_percentile(0.5),
            "p99_ms": entry.get_response_time_percentile(0.99),
            "max_ms": entry.max_response_time,
            "rate_per_s": round(entry.num_requests / plan["duration_s"], 3),
        }
    total = env.stats.total
    # A task that raised (a bug here, not an answer of the stack) is only logged by Locust.
    raised = Counter()
    for row in runner.exceptions.values():
        raised[row["msg"] or row["traceback"].strip().splitlines()[-1]] += row["count"]
    return {
        "user_exceptions": dict(raised),
        "locust_version": locust.__version__,
        "requests": total.num_requests,
        "failures": total.num_failures,
        "methods": methods,
        "errors_by_code": dict(sorted(ERRORS.items())),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("users.py: usage: users.py PLAN.json RESULT.json", file=sys.stderr)
        return 2
    plan = json.loads(Path(argv[0]).read_text())
    Path(argv[1]).write_text(json.dumps(run(plan), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
