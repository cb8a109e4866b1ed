"""The experiments' journal on disk (``--state-dir``): a restart resumes every experiment.

``experiments.jsonl`` under the state directory is append-only, one JSON line
per event, written (and flushed to the operating system) before the call that
made it is answered:

    {"created": "<Experiment message, base64>"}
    {"observed": "<experiment id>", "arm": "<variant name>", "value": <float>}

A server started on the same directory replays it
(:meth:`ExperimentJournal.replay`): each experiment comes back with its
settings and its observations in recording order, which is what the decision
rule tests (the first ``planned`` of each arm), so an analysis after the
restart is the one the old server would have given. A SIGKILL can cut only
the last line short; such a tail is dropped (its call was never answered).
Flushed lines survive the process, not the machine: there is no fsync per
observation.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from chimera.v1 import refinement_pb2

__all__ = ["ExperimentJournal", "Replayed"]


@dataclass
class Replayed:
    """One experiment as the journal recorded it."""

    proto: refinement_pb2.Experiment
    arms: dict[str, list[float]]


class ExperimentJournal:
    """Appends events to ``<directory>/experiments.jsonl``; thread-safe."""

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / "experiments.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._file: IO[str] | None = None

    def replay(self) -> dict[str, Replayed]:
        """Every recorded experiment by id, in creation order; drops a torn last line."""
        experiments: dict[str, Replayed] = {}
        good_bytes = 0
        for end, event in self._events():
            if "created" in event:
                proto = refinement_pb2.Experiment.FromString(base64.b64decode(event["created"]))
                arms = {proto.control.name: [], proto.treatment.name: []}
                experiments[proto.id] = Replayed(proto, arms)
            else:
                experiments[event["observed"]].arms[event["arm"]].append(float(event["value"]))
            good_bytes = end
        if self.path.exists() and self.path.stat().st_size != good_bytes:
            with open(self.path, "r+b") as f:  # the cut-off tail of a killed write
                f.truncate(good_bytes)
        return experiments

    def created(self, proto: refinement_pb2.Experiment) -> None:
        self._append({"created": base64.b64encode(proto.SerializeToString()).decode("ascii")})

    def observed(self, experiment_id: str, arm: str, value: float) -> None:
        self._append({"observed": experiment_id, "arm": arm, "value": value})

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def _append(self, event: dict[str, object]) -> None:
        line = json.dumps(event, separators=(",", ":")) + "\n"
        with self._lock:
            if self._file is None:
                self._file = open(self.path, "a", encoding="utf-8")
            self._file.write(line)
            self._file.flush()

    def _events(self) -> Iterator[tuple[int, dict[str, object]]]:
        """(byte offset after the line, event) for each complete, valid line."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        offset = 0
        for raw in data.splitlines(keepends=True):
            if not raw.endswith(b"\n"):
                return  # torn tail
            try:
                event = json.loads(raw)
            except ValueError:
                if offset + len(raw) == len(data):
                    return  # a torn last line
                raise ValueError(f"{self.path}: byte {offset}: not a journal line") from None
            offset += len(raw)
            yield offset, event
