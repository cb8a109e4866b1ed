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

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from chimera.execution.cancel import CancelToken
from chimera.execution.convert import kpi_to_proto, run_kpi
from chimera.execution.deployments import Deployment, DeploymentStore
from chimera.execution.kpi import KpiRecord
from chimera.execution.sandbox import (
    RUN_EXPORT,
    CompiledModule,
    ExecStatus,
    Limits,
    RunResult,
    Sandbox,
    has_entrypoint,
)
from chimera.execution.options import ExecutionOptions
from chimera.framework import InvalidArgument, Unavailable
from chimera.v1 import common_pb2, execution_pb2
from chimera.wasm.guest import encode_params

__all__ = [
    "DEFAULT_BATCH_TIMEOUT_MS",
    "Batches",
    "MAX_BATCH_INPUT_BYTES",
    "MAX_BATCH_PAIRS",
    "check_batch_entrypoint",
    "check_batch_size",
    "evaluate_batch",
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


def check_batch_size(request: execution_pb2.EvaluateBatchRequest) -> None:
    """INVALID_ARGUMENT when the request holds more pairs or input bytes than one batch may."""
    pairs = len(request.genomes) * len(request.inputs)
    if pairs > MAX_BATCH_PAIRS:
        raise InvalidArgument(
            "genomes",
            f"{len(request.genomes)} genomes x {len(request.inputs)} inputs = {pairs} pairs; "
            f"at most {MAX_BATCH_PAIRS} per batch",
        )
    input_bytes = sum(len(data) for data in request.inputs)
    if input_bytes > MAX_BATCH_INPUT_BYTES:
        raise InvalidArgument(
            "inputs", f"hold {input_bytes} bytes; at most {MAX_BATCH_INPUT_BYTES} per batch"
        )


def check_batch_entrypoint(request: execution_pb2.EvaluateBatchRequest, source: Deployment) -> str:
    """The export the batch runs; INVALID_ARGUMENT when the module lacks the one asked for."""
    entrypoint = request.entrypoint or RUN_EXPORT
    if request.entrypoint and not has_entrypoint(source.module.module, entrypoint):
        raise InvalidArgument(
            "entrypoint",
            f"must name a function exported by {request.module_name} with chimera_run's "
            "signature (4 i32 -> i32)",
        )
    return entrypoint


def evaluate_batch(
    sandbox: Sandbox,
    source: Deployment,
    request: execution_pb2.EvaluateBatchRequest,
    limits: Limits,
    cancel: CancelToken,
    *,
    workers: int,
    entrypoint: str,
) -> tuple[execution_pb2.EvaluateBatchResponse, list[KpiRecord]]:
    """Runs the request's pairs on ``source``'s module; the reply and each pair's KPI record
    (task id ``<batch_id>/<genome>/<input>``), in genome-major order."""
    # The contract's rules already made every parameter finite.
    params = [encode_params(genome.parameters) for genome in request.genomes]
    batch_id = request.batch_id or f"batch-{uuid.uuid4().hex[:12]}"
    started = time.perf_counter()
    results = run_pairs(
        sandbox, source.module, params, request.inputs, limits, cancel,
        workers=workers, entrypoint=entrypoint,
    )  # fmt: skip
    response = execution_pb2.EvaluateBatchResponse(
        batch_id=batch_id,
        module_version=source.version,
        module_sha256=source.module_sha256,
        wall_ms=(time.perf_counter() - started) * 1000.0,
    )
    records = []
    for k, result in enumerate(results):
        g, i = divmod(k, len(request.inputs))
        genome = request.genomes[g]
        record = run_kpi(
            result,
            task_id=f"{batch_id}/{g}/{i}",
            module_name=request.module_name,
            module_version=source.version,
            agent_id=genome.agent_id,
            genome_id=genome.id,
            metrics={"genome_index": float(g), "input_index": float(i)},
        )
        records.append(record)
        report = response.reports.add()
        report.CopyFrom(kpi_to_proto(record))
        if report.status == common_pb2.RUN_OUTCOME_SUCCESS:
            response.succeeded += 1
    return response, records


class Batches:
    """Runs ``EvaluateBatch`` requests on the store's modules; :meth:`close` stops the
    batches still running (each at its next epoch tick) and refuses new ones."""

    def __init__(
        self, sandbox: Sandbox, store: DeploymentStore, options: ExecutionOptions
    ) -> None:
        self._sandbox = sandbox
        self._store = store
        self._options = options
        self._lock = threading.Lock()
        self._running: set[CancelToken] = set()
        self._closed = False

    def evaluate(
        self,
        request: execution_pb2.EvaluateBatchRequest,
        on_cancel: Callable[[Callable[[], None]], object],
    ) -> tuple[execution_pb2.EvaluateBatchResponse, list[KpiRecord]]:
        """Checks and runs one request (:func:`evaluate_batch`); ``on_cancel`` registers
        what stops the batch when the caller goes away (``context.add_callback``)."""
        check_batch_size(request)
        limits = self._options.limits(request.limits if request.HasField("limits") else None)
        source = self._store.module_source(request.module_name, request.module_sha256)
        entrypoint = check_batch_entrypoint(request, source)
        timeout_ms = request.batch_timeout_ms or DEFAULT_BATCH_TIMEOUT_MS
        token = CancelToken(time.monotonic() + timeout_ms / 1000.0)
        on_cancel(lambda: token.cancel("the caller cancelled the batch"))
        with self._lock:
            if self._closed:
                raise Unavailable("the execution service is shutting down")
            self._running.add(token)
        try:
            return evaluate_batch(
                self._sandbox, source, request, limits, token,
                workers=self._options.concurrency, entrypoint=entrypoint,
            )  # fmt: skip
        finally:
            with self._lock:
                self._running.discard(token)

    def close(self) -> None:
        """Cancels the running batches; later requests are UNAVAILABLE. Idempotent."""
        with self._lock:
            self._closed = True
            running = list(self._running)
        for token in running:
            token.cancel("the execution service is shutting down")
