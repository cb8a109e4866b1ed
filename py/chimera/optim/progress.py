"""Progress of a long run: generation, best, mean, evaluations/s.

`ProgressReporter` is the hook `loop.run(..., progress=reporter)` calls on the
host; it logs to the `chimera.optim` logger (what the services' logs show) and
forwards each `Progress` to an optional sink (a CLI printer, a gRPC stream).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import NamedTuple, Optional

LOG = logging.getLogger("chimera.optim")


class Progress(NamedTuple):
    generation: int
    best: float
    mean: float
    evaluations: int
    evaluations_per_s: float


class ProgressReporter:
    """Turns (generation, best, mean, evaluations) callbacks into Progress records.

    One reporter per run: it times evaluations/s from its first callback.
    """

    def __init__(self, label: str = "run", sink: Optional[Callable[[Progress], None]] = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.label = label
        self.sink = sink
        self.clock = clock
        self.records: list[Progress] = []
        self._start: Optional[tuple[float, int]] = None

    def __call__(self, generation: int, best: float, mean: float, evaluations: int) -> None:
        now = self.clock()
        if self._start is None:
            self._start = (now, evaluations)
        start_time, start_evals = self._start
        elapsed = now - start_time
        rate = (evaluations - start_evals) / elapsed if elapsed > 0 else 0.0
        record = Progress(generation, best, mean, evaluations, rate)
        self.records.append(record)
        LOG.info("%s generation=%d best=%.6g mean=%.6g evaluations=%d evaluations/s=%.1f",
                 self.label, generation, best, mean, evaluations, rate)
        if self.sink is not None:
            self.sink(record)
