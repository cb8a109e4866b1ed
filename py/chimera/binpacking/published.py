"""The held-out published sets (OR3, Weibull 5k) and their published figures.

Only the scoreboard reads this module, after the loop has decided: nothing
that searches, selects, stops early or sets a parameter may import it
(``//tools/loop:held_out_test`` audits every file the search path opens).
Every load checks the set's SHA-256 against ``data/binpacking/SHA256SUMS``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from chimera.binpacking.instances import Instance
from chimera.wasm.artifacts import Artifact, locate

__all__ = ["SETS", "PublishedSet", "env_var", "figures", "load"]

_DIR = "data/binpacking"
#: The published sets by name, with the file each lives in.
SETS = {"or3": "or3.json", "weibull_5k": "weibull_5k.json"}


def env_var(name: str) -> str:
    """The environment variable that overrides where file ``name`` is found."""
    return "CHIMERA_BINPACKING_" + name.upper().replace(".", "_")


def _artifact(name: str) -> Artifact:
    return Artifact(f"{_DIR}/{name}", env_var(name))


@dataclass(frozen=True)
class PublishedSet:
    name: str
    instances: tuple[Instance, ...]
    sha256: str


def load(name: str) -> PublishedSet:
    """The published set ``name``, checked against its recorded SHA-256."""
    if name not in SETS:
        raise ValueError(f"set: {name!r} is not one of {sorted(SETS)}")
    path = locate(_artifact(SETS[name]))
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    sums = locate(_artifact("SHA256SUMS")).read_text(encoding="utf-8").split("\n")
    expected = {f: s for s, f in (line.split() for line in sums if line.strip())}
    if expected.get(SETS[name]) != digest:
        raise ValueError(f"{path}: SHA-256 {digest} is not the recorded {expected.get(SETS[name])}")
    document = json.loads(data)
    instances = tuple(
        Instance(spec["capacity"], tuple(spec["items"]), f"{name}/{key}")
        for key, spec in sorted(document["instances"].items())
    )
    return PublishedSet(name, instances, digest)


def figures() -> dict[str, Any]:
    """The published First Fit / Best Fit / FunSearch figures (``published_figures.json``)."""
    return json.loads(locate(_artifact("published_figures.json")).read_text(encoding="utf-8"))
