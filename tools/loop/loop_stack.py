"""The closed loop's layers as real subprocesses: layers 3-8, wired, all SERVING.

Wiring (every address is a free loopback port picked up front, so the order
of start-up does not matter: layer 5's KPI subscription reconnects with
backoff until layer 4 answers):

* layer 4 -> layer 3 (``--validation-target``: the 3->4 gate stays on);
* layer 5 -> layer 4 (``--execution-target``: the StreamKpis subscription);
* layer 7 -> layer 4 (``--execution-target``: DeployBest calls DeployGenome);
* layer 7 -> layer 8 (``--resources-target``: BeginRun asks for the grant);
* layer 6 -> layer 7 (``--genetics-target``: the bandit's state in the genome store).

Layers 1 (discovery) and 2 (planning) take no part in the loop and are not
started. The process handling is :class:`chimera.framework.processes.ProcessStack`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
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

__all__ = ["LOOP_LAYERS", "LoopLayer", "LoopStack", "loop_stack"]


@dataclass(frozen=True)
class LoopLayer:
    """A layer service: its name, its server binary in the runfiles, its gRPC service."""

    name: str
    binary: str
    service: str


def _layer(name: str, service: str) -> LoopLayer:
    return LoopLayer(name, f"layers/{name}/server", f"chimera.v1.{service}")


LOOP_LAYERS: tuple[LoopLayer, ...] = (
    _layer("layer3_validation", "ValidationService"),
    _layer("layer4_execution", "ExecutionService"),
    _layer("layer5_refinement", "RefinementService"),
    _layer("layer6_evolution", "EvolutionService"),
    _layer("layer7_genetics", "GeneticsService"),
    _layer("layer8_resources", "ResourcesService"),
)


@dataclass
class LoopStack:
    """The running layers, by name (``layer3_validation`` ... ``layer8_resources``)."""

    processes: ProcessStack
    servers: dict[str, ServerProcess] = field(default_factory=dict)

    def target(self, name: str) -> str:
        return self.servers[name].target


def _wiring(ports: dict[str, int], run_dir: Path) -> dict[str, list[str]]:
    execution = f"{LOOPBACK}:{ports['layer4_execution']}"
    return {
        "layer4_execution": ["--validation-target", f"{LOOPBACK}:{ports['layer3_validation']}"],
        "layer5_refinement": ["--execution-target", execution],
        "layer6_evolution": ["--genetics-target", f"{LOOPBACK}:{ports['layer7_genetics']}"],
        "layer7_genetics": [
            "--execution-target",
            execution,
            "--resources-target",
            f"{LOOPBACK}:{ports['layer8_resources']}",
            "--run-dir",
            str(run_dir / "genetics"),
        ],
        "layer8_resources": ["--storage-path", str(run_dir)],
    }


@contextlib.contextmanager
def loop_stack(
    run_dir: Path, *, startup_timeout: float = 90.0, grace: float = 10.0
) -> Iterator[LoopStack]:
    """Layers 3-8 as subprocesses (logs in ``run_dir``), SERVING; stopped on exit."""
    run_dir.mkdir(parents=True, exist_ok=True)
    binaries = {layer.name: runfile(layer.binary) for layer in LOOP_LAYERS}
    names = [layer.name for layer in LOOP_LAYERS]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    wiring = _wiring(ports, run_dir)
    specs = [
        ServerSpec(
            layer.name,
            (
                str(binaries[layer.name]),
                "--port",
                str(ports[layer.name]),
                "--metrics-port",
                "off",
                *wiring.get(layer.name, []),
            ),
            ports[layer.name],
            layer.service,
        )
        for layer in LOOP_LAYERS
    ]
    with ProcessStack(run_dir, startup_timeout=startup_timeout, grace=grace) as processes:
        stack = LoopStack(processes)
        for server in processes.start(specs):
            stack.servers[server.name] = server
        yield stack
