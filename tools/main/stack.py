"""Layers as real subprocesses for the main job: the layers' servers, wired and SERVING.

:func:`layer_stack` knows the layers and their wiring; the process handling
is :class:`chimera.framework.processes.ProcessStack`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from chimera.framework.processes import (
    LOOPBACK,
    ProcessStack,
    ServerProcess,
    ServerSpec,
    free_ports,
    runfile,
)

__all__ = ["LAYERS", "Layer", "LayerStack", "layer_stack"]


# --- the four layers -------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """A layer service: its name, its server binary in the runfiles, its gRPC service."""

    name: str
    binary: str
    service: str


LAYERS: tuple[Layer, ...] = (
    Layer("layer1_discovery", "layers/layer1_discovery/server", "chimera.v1.DiscoveryService"),
    Layer("layer2_planning", "layers/layer2_planning/server", "chimera.v1.PlanningService"),
    Layer("layer3_validation", "layers/layer3_validation/server", "chimera.v1.ValidationService"),
    Layer("layer4_execution", "layers/layer4_execution/server", "chimera.v1.ExecutionService"),
)


@dataclass
class LayerStack:
    """The running layers, by name (``layer1_discovery`` ... ``layer4_execution``)."""

    processes: ProcessStack
    servers: dict[str, ServerProcess] = field(default_factory=dict)

    def target(self, name: str) -> str:
        return self.servers[name].target


@contextlib.contextmanager
def layer_stack(
    run_dir: Path,
    *,
    extra_args: Mapping[str, Sequence[str]] | None = None,
    metrics: bool = True,
    startup_timeout: float = 60.0,
    grace: float = 10.0,
) -> Iterator[LayerStack]:
    """Layers 1-4 as subprocesses, wired 2 -> 1 and 4 -> 3, all SERVING; stopped on exit.

    ``extra_args`` adds flags per layer name (e.g. layer 4's ``--concurrency``).
    ``metrics`` gives each server a Prometheus port (also picked up front);
    otherwise ``--metrics-port off``. Layer 4 keeps its 3->4 gate on: it is
    pointed at layer 3, never started with ``--trust-unvalidated-modules``.
    """
    extra = dict(extra_args or {})
    unknown = set(extra) - {layer.name for layer in LAYERS}
    if unknown:
        raise ValueError(f"extra_args names unknown layers: {sorted(unknown)}")
    binaries = {layer.name: runfile(layer.binary) for layer in LAYERS}
    ports = free_ports(len(LAYERS) * (2 if metrics else 1))
    names = [layer.name for layer in LAYERS]
    grpc_ports = dict(zip(names, ports[: len(names)], strict=True))
    metrics_ports = dict(zip(names, ports[len(names) :], strict=metrics))
    wiring = {
        "layer2_planning": ["--discovery-target", f"{LOOPBACK}:{grpc_ports['layer1_discovery']}"],
        "layer4_execution": [
            "--validation-target",
            f"{LOOPBACK}:{grpc_ports['layer3_validation']}",
        ],
    }
    specs = []
    for layer in LAYERS:
        metrics_port = metrics_ports.get(layer.name)
        argv = [
            str(binaries[layer.name]),
            "--port",
            str(grpc_ports[layer.name]),
            "--metrics-port",
            str(metrics_port) if metrics_port is not None else "off",
            *wiring.get(layer.name, []),
            *extra.get(layer.name, []),
        ]
        specs.append(
            ServerSpec(layer.name, tuple(argv), grpc_ports[layer.name], layer.service, metrics_port)
        )
    with ProcessStack(run_dir, startup_timeout=startup_timeout, grace=grace) as processes:
        stack = LayerStack(processes)
        for server in processes.start(specs):
            stack.servers[server.name] = server
        yield stack
