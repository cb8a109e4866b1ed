"""The layer's deployment record on disk (``--state-dir``): a restart re-deploys what was deployed.

Layout under the state directory::

    modules/<sha256>.wasm   each admitted module's bytes, written once, before
                            its first deployment refers to it
    deployments.json        every slot: its versions (module digest, verdict,
                            genome, parameters), the active version and each
                            version's previous_version

``deployments.json`` is replaced atomically after every change
(:func:`chimera.framework.statefile.write_json`, called by the store under
its lock, which also keeps each module's bytes before adding it), so a SIGKILL leaves the last complete record. On start-up
:meth:`DeploymentRecord.read` checks each module's bytes against its digest,
compiles it again in the sandbox (admission by layer 3 was recorded with
the module; it is not asked again) and returns the slots for
:meth:`~chimera.execution.deployments.DeploymentStore.recorded`: the active
version and the candidate (canary) versions after it are live again, with
the same version numbers, so a rollback to a recorded version still works.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chimera.execution.deployments import Deployment, SlotState
from chimera.execution.sandbox import CompiledModule
from chimera.framework.statefile import read_json, write_atomically, write_json
from chimera.v1 import common_pb2

__all__ = ["FORMAT", "DeploymentRecord"]

#: The record's format; a record of another format is refused, not guessed at.
FORMAT = 1


class DeploymentRecord:
    """Module bytes and the slots' state under one directory."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._modules = self.directory / "modules"
        self._modules.mkdir(parents=True, exist_ok=True)
        self._slots_file = self.directory / "deployments.json"

    def keep_module(self, digest: str, wasm: bytes) -> None:
        """Stores an admitted module's bytes (once per digest)."""
        path = self._modules / f"{digest}.wasm"
        if not path.exists():
            write_atomically(path, wasm)

    def write(self, slots: dict[str, SlotState]) -> None:
        """Replaces the record with these slots (the store calls it after each change)."""
        write_json(
            self._slots_file,
            {"format": FORMAT, "slots": {name: _slot_json(state) for name, state in slots.items()}},
        )

    def read(self, compile_module: Callable[[bytes], CompiledModule]) -> dict[str, SlotState]:
        """The recorded slots (empty when nothing was recorded); ValueError names what is wrong."""
        document = read_json(self._slots_file)
        if document is None:
            return {}
        if document.get("format") != FORMAT:
            raise ValueError(f"{self._slots_file}: format {document.get('format')!r}, expected {FORMAT}")
        compiled: dict[str, CompiledModule] = {}
        slots = {}
        for name, slot in document["slots"].items():
            deployments = []
            for entry in slot["deployments"]:
                digest = entry["module_sha256"]
                if digest not in compiled:
                    compiled[digest] = compile_module(self._module_bytes(digest))
                deployments.append(_deployment(name, entry, compiled[digest]))
            previous = {int(v): int(p) for v, p in slot["previous_of"].items()}
            slots[name] = SlotState(tuple(deployments), int(slot["active"]), previous)
        return slots

    def _module_bytes(self, digest: str) -> bytes:
        path = self._modules / f"{digest}.wasm"
        try:
            wasm = path.read_bytes()
        except FileNotFoundError:
            raise ValueError(f"{path}: the recorded module is missing") from None
        actual = hashlib.sha256(wasm).hexdigest()
        if actual != digest:
            raise ValueError(f"{path}: bytes hash to {actual}, not the recorded digest")
        return wasm


def _slot_json(state: SlotState) -> dict[str, Any]:
    return {
        "active": state.active,
        "previous_of": {str(v): p for v, p in state.previous_of.items()},
        "deployments": [
            {
                "version": d.version,
                "module_sha256": d.module_sha256,
                "verdict_id": d.verdict_id,
                "params": list(d.params),
                "genome_id": d.genome_id,
                "genome_agent_id": d.genome_agent_id,
                "genome": (
                    base64.b64encode(d.genome.SerializeToString()).decode("ascii")
                    if isinstance(d.genome, common_pb2.AgentGenome)
                    else None
                ),
                "deployed_at": d.deployed_at,
            }
            for d in state.deployments
        ],
    }


def _deployment(module_name: str, entry: dict[str, Any], module: CompiledModule) -> Deployment:
    genome = entry.get("genome")
    return Deployment(
        module_name,
        int(entry["version"]),
        module,
        entry["verdict_id"],
        tuple(float(p) for p in entry["params"]),
        entry["genome_id"],
        entry["genome_agent_id"],
        common_pb2.AgentGenome.FromString(base64.b64decode(genome)) if genome else None,
        float(entry["deployed_at"]),
    )
