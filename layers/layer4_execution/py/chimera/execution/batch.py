"""Batched evaluation: one module, many genomes x many inputs, run directly in the sandbox.

Behind ``EvaluateBatch`` (execution.proto). A population evaluation is many
short, independent runs of one module; sending each through ``SubmitTask``
costs a round trip, a queue entry and a poll per pair. Here the pairs skip the
priority scheduler and run on a small thread pool (at most the service's
concurrency: wasmtime releases the GIL while the guest runs), each in a fresh
store with the same fuel / memory / wall-time limits as tasks. One
:class:`~chimera.execution.cancel.CancelToken` carries the whole batch's
deadline, so no request runs past its ``batch_timeout_ms`` however many pairs
it holds, and closing the service stops a running batch at its next epoch tick.

A pair that fails is a result with that status, never an exception: the host
cannot know a kernel's genome length, so a genome the kernel refuses
(INVALID_PARAMS) is that pair's failure, reported like a trap of a task.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from chimera.execution.cancel import CancelToken
from chimera.execution.sandbox import RUN_EXPORT, CompiledModule, ExecStatus, Limits, RunResult, Sandbox

__all__ = [
    "DEFAULT_BATCH_TIMEOUT_MS",
    "MAX_BATCH_INPUT_BYTES",
    "MAX_BATCH_PAIRS",
    "run_pairs",
]

#: Pairs of one request (the contract caps genomes at 256 and inputs at 64).
MAX_BATCH_PAIRS = 4096
#: Input bytes of one request, all inputs together.
MAX_BATCH_INPUT_BYTES = 4_000_000
#: The whole batch's wall-time budget when the request leaves it 0.
DEFAULT_BATCH_TIMEOUT_MS = 30_000


def run_pairs(
    sandbox: Sandbox,
    module: CompiledModule,
    params: Sequence[bytes],
    inputs: Sequence[bytes],
    limits: Limits,
    cancel: CancelToken,
    *,
    workers: int = 1,
    entrypoint: str = RUN_EXPORT,
) -> list[RunResult]:
    """Runs every (genome, input) pair; results in genome-major order (``g * len(inputs) + i``).

    ``params`` are encoded parameter buffers, one per genome. ``cancel``
    carries the batch deadline; a pair that has not started when it passes (or
    when the token is cancelled) is reported without running.
    """
    count = len(params) * len(inputs)

    def one(k: int) -> RunResult:
        g, i = divmod(k, len(inputs))
        if cancel.cancelled or (cancel.deadline is not None and time.monotonic() >= cancel.deadline):
            status = ExecStatus.CANCELLED if cancel.cancelled else ExecStatus.DEADLINE_EXCEEDED
            why = cancel.reason if cancel.cancelled else "the batch deadline passed"
            return RunResult(status, f"not started: {why}", None, 0, 0, 0.0, module.digest)
        return sandbox.run(module, params[g], inputs[i], limits, cancel, entrypoint=entrypoint)

    threads = min(max(workers, 1), count)
    if threads <= 1:
        return [one(k) for k in range(count)]
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="chimera-batch") as pool:
        return list(pool.map(one, range(count)))
