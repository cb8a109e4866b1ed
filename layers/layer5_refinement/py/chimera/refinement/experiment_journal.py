"""The experiments' journal on disk (``--state-dir``): a restart resumes every experiment.

``experiments.jsonl`` under the state directory is append-only, one JSON line
per event, written (and flushed to the operating system) before the call that
made it is answered:

    {"created": "<Experiment message, base64>"}
    {"observed": "<RecordObservationRequest message, base64>"}

An observation is the whole request (arm, value, unit, guardrail values).
A server started on the same directory replays the events in their order
(:meth:`ExperimentJournal.replay`): each experiment comes back with its
settings and its observations in recording order (and, for paired designs,
its pairs in the order they completed), which is what the decision rule
tests, so an analysis after the restart is the one the old server would
have given. A SIGKILL can cut only
the last line short; such a tail is dropped (its call was never answered).
Flushed lines survive the process, not the machine: there is no fsync per
observation.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Union

from chimera.v1 import refinement_pb2

__all__ = ["Event", "ExperimentJournal"]

#: A journalled event: an experiment's creation or one observation of it.
Event = Union[refinement_pb2.Experiment, refinement_pb2.RecordObservationRequest]


class ExperimentJournal:
    """Appends events to ``<directory>/experiments.jsonl``; thread-safe."""

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / "experiments.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._file: IO[str] | None = None

    def replay(self) -> list[Event]:
        """Every recorded event in recording order; drops a torn last line."""
        events: list[Event] = []
        good_bytes = 0
        for end, event in self._events():
            if "created" in event:
                events.append(refinement_pb2.Experiment.FromString(_decode(event["created"])))
            else:
                events.append(
                    refinement_pb2.RecordObservationRequest.FromString(_decode(event["observed"]))
                )
            good_bytes = end
        if self.path.exists() and self.path.stat().st_size != good_bytes:
            with open(self.path, "r+b") as f:  # the cut-off tail of a killed write
                f.truncate(good_bytes)
        return events

    def created(self, proto: refinement_pb2.Experiment) -> None:
        self._append({"created": _encode(proto)})

    def observed(self, request: refinement_pb2.RecordObservationRequest) -> None:
        self._append({"observed": _encode(request)})

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


def _encode(message: Event) -> str:
    return base64.b64encode(message.SerializeToString(deterministic=True)).decode("ascii")


def _decode(text: object) -> bytes:
    return base64.b64decode(str(text), validate=True)
