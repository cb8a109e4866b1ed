"""The eight layers as real subprocesses: one table, wired, all SERVING.

:data:`LAYERS` is the one table of the layer servers the main job starts (the
closed loop and the monitoring check run on the same stack): each layer's
name, Bazel server target, gRPC service, the flags that name other layers'
addresses, and the state it keeps under the run directory. :func:`layer_stack`
turns it into command lines on free loopback ports (gRPC and metrics ports are
all picked up front, so start-up order does not matter: layer 5's KPI
subscription reconnects with backoff until layer 4 answers). The process
handling is :class:`chimera.framework.processes.ProcessStack`; with a
``restart`` policy it also restarts a layer that dies, on the same command
line (same port, same state under the run directory).

Import it as ``tools.main.stack`` (one module object per process).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from chimera.framework.client import ClientConfig, RetryPolicy
from chimera.framework.processes import (
    LOOPBACK,
    ProcessStack,
    RestartEvent,
    RestartPolicy,
    ServerProcess,
    ServerSpec,
    StackError,
    free_ports,
    runfile,
)

__all__ = [
    "LAYERS",
    "Layer",
    "LayerStack",
    "RestartEvent",
    "RestartPolicy",
    "StackError",
    "client_config",
    "free_ports",
    "layer_stack",
]


@dataclass(frozen=True)
class Layer:
    """One layer service of the stack.

    ``upstreams``: (flag, layer name) pairs; the flag gets that layer's gRPC
    address (layer 2's ``--discovery-target`` is layer 1). ``state``: (flag,
    path) pairs, the path relative to the run directory ("." is the run
    directory itself); a restart on the same run directory finds the state
    again (layer 7's genome store, which also holds layer 6's bandit state).
    ``repeatable``: the service's methods a client may send again when the
    layer died under the first attempt (reads, and writes whose repetition
    changes nothing); see :func:`client_config`.
    """

    name: str
    service: str
    upstreams: tuple[tuple[str, str], ...] = ()
    state: tuple[tuple[str, str], ...] = ()
    repeatable: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """The server's Bazel target (a ``data`` dependency of :stack)."""
        return f"//layers/{self.name}:server"

    @property
    def binary(self) -> str:
        """The server's path in the runfiles."""
        return f"layers/{self.name}/server"


LAYERS: tuple[Layer, ...] = (
    Layer(
        "layer1_discovery",
        "chimera.v1.DiscoveryService",
        repeatable=("Collect", "GetAlerts", "EvaluateThresholds"),
    ),
    Layer(
        "layer2_planning",
        "chimera.v1.PlanningService",
        upstreams=(("--discovery-target", "layer1_discovery"),),
        repeatable=("GetPlan",),
    ),
    # A repeated check records another verdict with the same finding.
    Layer(
        "layer3_validation",
        "chimera.v1.ValidationService",
        repeatable=("ValidatePlan", "ValidateModule", "GetVerdict"),
    ),
    # The 3->4 gate stays on: layer 4 asks layer 3 for every module's verdict.
    Layer(
        "layer4_execution",
        "chimera.v1.ExecutionService",
        upstreams=(("--validation-target", "layer3_validation"),),
        # The deployment record: a restart re-deploys every slot's versions.
        state=(("--state-dir", "execution"),),
        # EvaluateBatch: the loop names each batch (batch_id), so a repeat's KPI reports
        # carry the same task ids, and layer 5's windows keep each id once.
        repeatable=("EvaluateBatch", "ListVersions", "GetTask", "ListDeadLetters"),
    ),
    # Layer 5's StreamKpis subscription; the journal resumes its experiments.
    Layer(
        "layer5_refinement",
        "chimera.v1.RefinementService",
        upstreams=(("--execution-target", "layer4_execution"),),
        state=(("--state-dir", "refinement"),),
        repeatable=("DetectPatterns", "AnalyzeExperiment", "ShouldEvolve"),
    ),
    # The bandit's state lives in layer 7's genome store.
    Layer(
        "layer6_evolution",
        "chimera.v1.EvolutionService",
        upstreams=(("--genetics-target", "layer7_genetics"),),
        repeatable=("SuggestOperators",),
    ),
    # DeployBest calls layer 4's DeployGenome; BeginRun asks layer 8 for the grant.
    Layer(
        "layer7_genetics",
        "chimera.v1.GeneticsService",
        upstreams=(
            ("--execution-target", "layer4_execution"),
            ("--resources-target", "layer8_resources"),
        ),
        state=(("--run-dir", "genetics"),),
        # RunGeneration: a repeat of a committed one returns the stored generation.
        repeatable=("RunGeneration", "GetGenome", "ListGenomeHistory", "GetBanditState"),
    ),
    # The disk it pools is the run directory's filesystem; the ledger keeps
    # allocations and jobs (layer 7's grant) across a restart.
    Layer(
        "layer8_resources",
        "chimera.v1.ResourcesService",
        state=(("--storage-path", "."), ("--state-dir", "resources")),
        repeatable=(
            "GetInventory", "ListAllocations", "EstimateCost", "GetJob", "Release", "CancelJob"
        ),
    ),
)


def client_config(**overrides: object) -> ClientConfig:
    """The call policy for clients of the stack's layers: they ride out a restart.

    Every call waits (within its deadline) for a layer that is down, so a
    supervised restart is a pause, not an error; a call the layer's death cut
    off is sent again (up to 5 attempts, UNAVAILABLE only) when its method is
    ``repeatable``; any other one fails with UNAVAILABLE, as it must.
    """
    settings: dict[str, object] = {
        "wait_for_ready": True,
        "idempotent_methods": tuple(
            f"{layer.service}/{method}" for layer in LAYERS for method in layer.repeatable
        ),
        "retry": RetryPolicy(max_attempts=5, initial_backoff_seconds=0.2, max_backoff_seconds=2.0),
        "max_reconnect_backoff_seconds": 1.0,
        **overrides,
    }
    return ClientConfig(**settings)  # type: ignore[arg-type]


@dataclass
class LayerStack:
    """The running layers, by name (``layer1_discovery`` ... ``layer8_resources``)."""

    processes: ProcessStack
    servers: dict[str, ServerProcess] = field(default_factory=dict)

    def target(self, name: str) -> str:
        return self.servers[name].target

    def targets(self) -> dict[str, str]:
        """gRPC address by layer name."""
        return {name: server.target for name, server in self.servers.items()}

    def metrics_targets(self) -> dict[str, str]:
        """``host:port`` of each layer's Prometheus endpoint (layers started with metrics)."""
        return {
            name: f"{LOOPBACK}:{server.spec.metrics_port}"
            for name, server in self.servers.items()
            if server.spec.metrics_port is not None
        }


def command_lines(
    run_dir: Path,
    grpc_ports: Mapping[str, int],
    metrics_ports: Mapping[str, int],
    extra_args: Mapping[str, Sequence[str]],
) -> list[ServerSpec]:
    """One ServerSpec per row of :data:`LAYERS` (binaries looked up in the runfiles)."""
    specs = []
    for layer in LAYERS:
        metrics_port = metrics_ports.get(layer.name)
        argv = [
            str(runfile(layer.binary)),
            "--port",
            str(grpc_ports[layer.name]),
            "--metrics-port",
            str(metrics_port) if metrics_port is not None else "off",
        ]
        for flag, upstream in layer.upstreams:
            argv += [flag, f"{LOOPBACK}:{grpc_ports[upstream]}"]
        for flag, path in layer.state:
            argv += [flag, str(run_dir / path)]
        argv += extra_args.get(layer.name, ())
        specs.append(
            ServerSpec(layer.name, tuple(argv), grpc_ports[layer.name], layer.service, metrics_port)
        )
    return specs


@contextlib.contextmanager
def layer_stack(
    run_dir: Path,
    *,
    extra_args: Mapping[str, Sequence[str]] | None = None,
    metrics: bool = True,
    startup_timeout: float = 90.0,
    grace: float = 10.0,
    restart: RestartPolicy | None = None,
) -> Iterator[LayerStack]:
    """Every layer of :data:`LAYERS` as a subprocess (logs in ``run_dir``), SERVING; stopped on exit.

    ``extra_args`` adds flags per layer name (e.g. layer 4's ``--concurrency``).
    ``metrics`` gives each server a Prometheus port (also picked up front);
    otherwise ``--metrics-port off``. ``restart``: once all are SERVING, a
    layer that dies is restarted under this policy (``processes.restart_events``
    records each death). StackError when a server cannot start.
    """
    extra = dict(extra_args or {})
    names = [layer.name for layer in LAYERS]
    unknown = set(extra) - set(names)
    if unknown:
        raise ValueError(f"extra_args names unknown layers: {sorted(unknown)}")
    run_dir.mkdir(parents=True, exist_ok=True)
    ports = free_ports(len(names) * (2 if metrics else 1))
    grpc_ports = dict(zip(names, ports[: len(names)], strict=True))
    metrics_ports = dict(zip(names, ports[len(names) :], strict=metrics))
    specs = command_lines(run_dir, grpc_ports, metrics_ports, extra)
    with ProcessStack(run_dir, startup_timeout=startup_timeout, grace=grace) as processes:
        stack = LayerStack(processes)
        for server in processes.start(specs):
            stack.servers[server.name] = server
        if restart is not None:
            processes.supervise(restart)
        yield stack
