"""wasmtime sandbox for layer-4 tasks: validation, compile cache, limited runs.

Isolation model (why each piece exists):

* **No ambient capabilities.** Modules are instantiated with an empty import
  list; :func:`validate_module` rejects any import outside an explicit
  allow-list (default: none), so a guest can only compute on its own memory.
* **Fuel** bounds CPU deterministically (``Config.consume_fuel``); fuel
  consumed is the repeatable cost measure KPIs report.
* **Store limits** bound linear memory; a refused ``memory.grow`` shows up as
  ``MEMORY_LIMIT``.
* **Epoch deadline** bounds wall time: one :class:`EpochTicker` thread per
  engine increments the epoch every ``tick_ms``; at each tick the store's
  hook checks the task's deadline and cancel token, so timeouts and
  cancellation of *running* tasks both work.
* **Fresh store per task**: nothing survives between tasks.
"""

from __future__ import annotations

import enum
import hashlib
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import wasmtime

from chimera.execution import _epoch
from chimera.wasm.guest import (
    ABI_VERSION,
    GUEST_STATUS_NAMES,
    MEMORY_EXPORT,
    REQUIRED_FUNCTIONS,
    AbiError,
    GuestResult,
    decode_result,
    encode_params,
)
from chimera.execution.cancel import CancelToken

#: Module bytes as callers hold them (wasmtime.wat2wasm returns a bytearray).
WasmBytes = bytes | bytearray | memoryview

#: The guest ABI's default entrypoint.
RUN_EXPORT = "chimera_run"
WASM_MAGIC = b"\0asm"
WASM_VERSION_1 = b"\x01\0\0\0"
WASM_PAGE = 65536
DEFAULT_MAX_MODULE_BYTES = 16 * 1024 * 1024
MAX_TABLE_ELEMENTS = 100_000


class ExecStatus(enum.Enum):
    """Outcome of one sandboxed run."""

    OK = "OK"
    FUEL_EXHAUSTED = "FUEL_EXHAUSTED"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    MEMORY_LIMIT = "MEMORY_LIMIT"
    TRAP = "TRAP"
    GUEST_ERROR = "GUEST_ERROR"
    CANCELLED = "CANCELLED"


class InvalidModule(ValueError):
    """A module rejected before it could run; ``reason`` says which rule failed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Limits:
    """Per-run resource limits."""

    fuel: int = 2_000_000_000
    memory_bytes: int = 64 * 1024 * 1024
    timeout_ms: float = 10_000.0

    def __post_init__(self) -> None:
        if self.fuel <= 0:
            raise ValueError(f"fuel must be > 0, got {self.fuel}")
        if self.memory_bytes < WASM_PAGE:
            raise ValueError(f"memory_bytes must be >= {WASM_PAGE}, got {self.memory_bytes}")
        if not (math.isfinite(self.timeout_ms) and self.timeout_ms > 0):
            raise ValueError(f"timeout_ms must be finite and > 0, got {self.timeout_ms}")


@dataclass(frozen=True)
class CompiledModule:
    """A validated, compiled module and the SHA-256 digest of its bytes."""

    digest: str
    module: wasmtime.Module
    size_bytes: int


@dataclass(frozen=True)
class RunResult:
    """What one run produced and cost."""

    status: ExecStatus
    message: str
    output: GuestResult | None
    fuel_consumed: int
    memory_peak_bytes: int
    latency_ms: float
    module_digest: str
    guest_status: int | None = None

    @property
    def ok(self) -> bool:
        """True when the guest ran to completion and returned a valid record."""
        return self.status is ExecStatus.OK


def _func_arity(ty: object) -> tuple[int, int] | None:
    if not isinstance(ty, wasmtime.FuncType):
        return None
    i32 = wasmtime.ValType.i32()
    if any(p != i32 for p in ty.params) or any(r != i32 for r in ty.results):
        return None
    return len(ty.params), len(ty.results)


def check_interface(module: wasmtime.Module, allowed_imports: Iterable[str] = ()) -> None:
    """Rejects imports outside ``allowed_imports`` ("module.name") and missing ABI exports."""
    allowed = frozenset(allowed_imports)
    for imp in module.imports:
        name = f"{imp.module}.{imp.name}"
        if name not in allowed:
            shown = ", ".join(sorted(allowed)) or "none"
            raise InvalidModule(f"import {name!r} is not allowed (allowed imports: {shown})")
    exports = {e.name: e.type for e in module.exports}
    if not isinstance(exports.get(MEMORY_EXPORT), wasmtime.MemoryType):
        raise InvalidModule("missing export 'memory' (a linear memory)")
    for fname, arity in REQUIRED_FUNCTIONS.items():
        got = _func_arity(exports.get(fname))
        if got != arity:
            raise InvalidModule(
                f"export {fname!r} must be a function of {arity[0]} i32 params "
                f"returning {arity[1]} i32"
            )


def has_entrypoint(module: wasmtime.Module, name: str) -> bool:
    """True when ``module`` exports ``name`` with ``chimera_run``'s signature (4 i32 -> i32)."""
    for export in module.exports:
        if export.name == name:
            return _func_arity(export.type) == REQUIRED_FUNCTIONS[RUN_EXPORT]
    return False


def check_header(wasm: WasmBytes, max_bytes: int = DEFAULT_MAX_MODULE_BYTES) -> None:
    """Cheap checks before handing bytes to wasmtime: type, size, magic, version."""
    if not isinstance(wasm, (bytes, bytearray, memoryview)):
        raise InvalidModule(f"module must be bytes, got {type(wasm).__name__}")
    if len(wasm) > max_bytes:
        raise InvalidModule(f"module is {len(wasm)} bytes; the limit is {max_bytes}")
    if len(wasm) < 8:
        raise InvalidModule(f"module is {len(wasm)} bytes; a wasm header needs 8")
    if bytes(wasm[:4]) != WASM_MAGIC:
        raise InvalidModule("bad magic: not a WebAssembly binary")
    if bytes(wasm[4:8]) != WASM_VERSION_1:
        raise InvalidModule(
            f"unsupported binary version {bytes(wasm[4:8]).hex()} (core wasm 01000000 only)"
        )


def validate_module(
    wasm: WasmBytes,
    *,
    engine: wasmtime.Engine | None = None,
    allowed_imports: Iterable[str] = (),
    max_bytes: int = DEFAULT_MAX_MODULE_BYTES,
) -> wasmtime.Module:
    """Validates and compiles ``wasm`` for ``engine``, or raises :class:`InvalidModule`.

    Without an engine a throwaway default engine is used (validation only;
    the returned module then cannot run in a sandbox's engine).
    """
    check_header(wasm, max_bytes)
    eng = engine if engine is not None else wasmtime.Engine()
    data = bytes(wasm)
    try:
        wasmtime.Module.validate(eng, data)
        module = wasmtime.Module(eng, data)
    except wasmtime.WasmtimeError as exc:
        raise InvalidModule(f"malformed module: {str(exc).splitlines()[0]}") from None
    check_interface(module, allowed_imports)
    return module


class ModuleCache:
    """Compiles each distinct module once, keyed by the SHA-256 of its bytes.

    Compiled modules live in memory; with ``cache_dir`` they are also stored
    as ``<digest>.cwasm`` via ``Module.serialize`` and loaded with
    ``Module.deserialize`` by later processes. Deserializing runs native code
    produced by a compiler, so ``cache_dir`` must be private to the service.
    """

    def __init__(
        self,
        engine: wasmtime.Engine,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        allowed_imports: Iterable[str] = (),
        max_module_bytes: int = DEFAULT_MAX_MODULE_BYTES,
    ) -> None:
        self._engine = engine
        self._dir = Path(cache_dir) if cache_dir is not None else None
        if self._dir is not None:
            self._dir.mkdir(parents=True, exist_ok=True)
        self._allowed = frozenset(allowed_imports)
        self._max_bytes = max_module_bytes
        self._lock = threading.Lock()
        self._modules: dict[str, CompiledModule] = {}
        self._compiling: dict[str, threading.Lock] = {}
        self.hits = 0
        self.misses = 0
        self.disk_hits = 0
        self.compiles = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._modules)

    def get(self, wasm: WasmBytes) -> CompiledModule:
        """The compiled module for ``wasm``; raises :class:`InvalidModule`."""
        check_header(wasm, self._max_bytes)
        data = bytes(wasm)
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            found = self._modules.get(digest)
            if found is not None:
                self.hits += 1
                return found
            self.misses += 1
            gate = self._compiling.setdefault(digest, threading.Lock())
        with gate:  # one compile per digest; other digests proceed in parallel
            try:
                with self._lock:
                    found = self._modules.get(digest)
                if found is None:
                    found = CompiledModule(digest, self._load(digest, data), len(data))
                    with self._lock:
                        self._modules[digest] = found
            finally:
                with self._lock:
                    self._compiling.pop(digest, None)
        return found

    def discard(self, digest: str) -> bool:
        """Forgets a compiled module (memory only), e.g. one whose deploy was refused.

        Holders of the :class:`CompiledModule` keep it; a later :meth:`get`
        compiles it again. Returns whether it was cached.
        """
        with self._lock:
            return self._modules.pop(digest, None) is not None

    def _load(self, digest: str, data: bytes) -> wasmtime.Module:
        path = self._dir / f"{digest}.cwasm" if self._dir is not None else None
        if path is not None and path.is_file():
            try:
                module = wasmtime.Module.deserialize(self._engine, path.read_bytes())
                check_interface(module, self._allowed)
                with self._lock:
                    self.disk_hits += 1
                return module
            except (wasmtime.WasmtimeError, OSError):
                pass  # stale or foreign artifact: recompile and overwrite it
        module = validate_module(
            data, engine=self._engine, allowed_imports=self._allowed, max_bytes=self._max_bytes
        )
        with self._lock:
            self.compiles += 1
        if path is not None:
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(module.serialize())
            os.replace(tmp, path)
        return module


class EpochTicker:
    """The single background thread that advances one engine's epoch.

    Owned by a :class:`Sandbox`; :meth:`stop` ends it and joins it.
    """

    def __init__(self, engine: wasmtime.Engine, interval_ms: float) -> None:
        if interval_ms <= 0:
            raise ValueError("interval_ms must be > 0")
        self._engine = engine
        self.interval_s = interval_ms / 1000.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chimera-epoch-ticker", daemon=True)
        self.ticks = 0

    def start(self) -> None:
        """Starts ticking (once)."""
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._engine.increment_epoch()
            self.ticks += 1

    def stop(self) -> None:
        """Stops ticking and waits for the thread to end."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    @property
    def running(self) -> bool:
        """True while the thread is alive."""
        return self._thread.is_alive()


class _Watch:
    """Decides, at each epoch tick, whether a run must stop and why."""

    def __init__(self, deadline: float, cancel: CancelToken | None) -> None:
        self.deadline = deadline
        self.cancel = cancel
        self.stopped: ExecStatus | None = None

    def check(self) -> str | None:
        if self.cancel is not None and self.cancel.cancelled:
            self.stopped = ExecStatus.CANCELLED
            return f"chimera: task cancelled ({self.cancel.reason})"
        if time.monotonic() >= self.deadline:
            self.stopped = ExecStatus.DEADLINE_EXCEEDED
            return "chimera: wall-clock deadline exceeded"
        return None


class _GuestError(Exception):
    """The guest broke the ABI or returned a non-OK status (``code``)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class _MemoryLimit(Exception):
    """An input buffer could not be allocated under the memory limit."""


class Sandbox:
    """Runs guest modules in fresh, limited stores of one shared engine.

    ``use_deadline_hook=None`` uses the per-store epoch hook when the installed
    wasmtime-py supports it (see ``_epoch``); False forces the fixed-deadline
    fallback, where cancellation cannot stop a task that is already running.

    A run that fails (trap, fuel, guest error) with its memory within
    ``memory_headroom`` (a fraction of the limit, or one page) of the memory
    limit is reported as ``MEMORY_LIMIT``: memory only grows, and a refused
    ``memory.grow`` is then the likeliest cause.
    """

    def __init__(
        self,
        *,
        tick_ms: float = 5.0,
        cache_dir: str | os.PathLike[str] | None = None,
        allowed_imports: Iterable[str] = (),
        default_limits: Limits = Limits(),
        max_module_bytes: int = DEFAULT_MAX_MODULE_BYTES,
        use_deadline_hook: bool | None = None,
        memory_headroom: float = 0.25,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        config = wasmtime.Config()
        config.consume_fuel = True
        config.epoch_interruption = True
        self.engine = wasmtime.Engine(config)
        self.tick_ms = tick_ms
        self.default_limits = default_limits
        self.modules = ModuleCache(
            self.engine,
            cache_dir=cache_dir,
            allowed_imports=allowed_imports,
            max_module_bytes=max_module_bytes,
        )
        if use_deadline_hook and not _epoch.AVAILABLE:
            raise RuntimeError("this wasmtime-py has no epoch deadline callbacks")
        self.uses_deadline_hook = (
            _epoch.AVAILABLE if use_deadline_hook is None else use_deadline_hook
        )
        if not 0.0 <= memory_headroom < 1.0:
            raise ValueError("memory_headroom must be in [0, 1)")
        self.memory_headroom = memory_headroom
        self._clock = clock
        self.ticker = EpochTicker(self.engine, tick_ms)
        self.ticker.start()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stops the epoch ticker; runs started afterwards have no wall-clock bound."""
        self.ticker.stop()

    def compile(self, wasm: WasmBytes) -> CompiledModule:
        """Validates and compiles (or fetches from cache); raises :class:`InvalidModule`."""
        return self.modules.get(wasm)

    def run(
        self,
        module: CompiledModule,
        params: Sequence[float] | bytes,
        input: bytes,
        limits: Limits | None = None,
        cancel: CancelToken | None = None,
        entrypoint: str = RUN_EXPORT,
    ) -> RunResult:
        """Runs ``module`` once on (params, input) in a fresh store and reports the outcome.

        ``entrypoint`` is the exported function called with the buffers (same
        signature as ``chimera_run``). Never raises for guest misbehaviour:
        every failure is a status.
        """
        lim = limits if limits is not None else self.default_limits
        start = self._clock()
        deadline = time.monotonic() + lim.timeout_ms / 1000.0
        if cancel is not None and cancel.deadline is not None:
            deadline = min(deadline, cancel.deadline)

        def result(
            status: ExecStatus,
            message: str = "",
            output: GuestResult | None = None,
            fuel: int = 0,
            mem: int = 0,
            guest_status: int | None = None,
        ) -> RunResult:
            latency = (self._clock() - start) * 1000.0
            return RunResult(
                status, message, output, fuel, mem, latency, module.digest, guest_status
            )

        if cancel is not None and cancel.cancelled:
            return result(ExecStatus.CANCELLED, f"cancelled before start ({cancel.reason})")
        try:
            params_bytes = params if isinstance(params, bytes) else encode_params(params)
        except AbiError as exc:
            return result(ExecStatus.GUEST_ERROR, f"bad params: {exc}")

        store = wasmtime.Store(self.engine)
        store.set_fuel(lim.fuel)
        store.set_limits(
            memory_size=lim.memory_bytes,
            table_elements=MAX_TABLE_ELEMENTS,
            instances=1,
            tables=4,
            memories=1,
        )
        watch = _Watch(deadline, cancel)
        hook = None
        if self.uses_deadline_hook:
            hook = _epoch.install(store, watch.check)
            store.set_epoch_deadline(1)
        else:
            ticks = math.ceil(lim.timeout_ms / self.tick_ms) + 1
            store.set_epoch_deadline(ticks)

        memory: wasmtime.Memory | None = None
        status, message = ExecStatus.OK, ""
        output: GuestResult | None = None
        guest_status: int | None = None
        try:
            instance = wasmtime.Instance(store, module.module, [])
            exports = instance.exports(store)
            mem_export = exports[MEMORY_EXPORT]
            if not isinstance(mem_export, wasmtime.Memory):
                raise _GuestError("export 'memory' is not a memory")
            memory = mem_export
            output, guest_status = self._call(
                store, exports, memory, params_bytes, input, lim.memory_bytes, entrypoint
            )
        except wasmtime.Trap as trap:
            status, message = self._classify_trap(trap, watch)
        except wasmtime.WasmtimeError as err:
            text = str(err)
            if watch.stopped is not None:
                status, message = watch.stopped, text.splitlines()[-1].strip()
            elif "exceeds memory limits" in text or "memory limit" in text:
                status, message = ExecStatus.MEMORY_LIMIT, text.splitlines()[0]
            else:
                status, message = ExecStatus.TRAP, text.splitlines()[0]
        except _MemoryLimit as exc:
            status, message = ExecStatus.MEMORY_LIMIT, str(exc)
        except _GuestError as exc:
            status, message, guest_status = ExecStatus.GUEST_ERROR, str(exc), exc.code
        except (KeyError, AbiError) as exc:
            status, message = ExecStatus.GUEST_ERROR, f"ABI violation: {exc}"

        fuel = lim.fuel - store.get_fuel()
        mem = memory.data_len(store) if memory is not None else 0
        del hook  # kept alive (ctypes callback) until the store has stopped running
        if (
            status in (ExecStatus.TRAP, ExecStatus.FUEL_EXHAUSTED, ExecStatus.GUEST_ERROR)
            and memory is not None
            and self._near_limit(mem, lim.memory_bytes)
        ):
            # wasmtime-py cannot report a refused memory.grow directly (grow
            # just returns -1), so a failure that ends near the cap is
            # attributed to the cap; the original failure stays in the message.
            message = (
                f"memory limit of {lim.memory_bytes} bytes reached at {mem} bytes "
                f"({status.value}: {message})"
            )
            status = ExecStatus.MEMORY_LIMIT
        return result(status, message, output, fuel, mem, guest_status)

    def _near_limit(self, mem: int, limit: int) -> bool:
        return mem + WASM_PAGE > limit or mem > limit * (1.0 - self.memory_headroom)

    @staticmethod
    def _classify_trap(trap: wasmtime.Trap, watch: _Watch) -> tuple[ExecStatus, str]:
        code = trap.trap_code
        text = str(trap).splitlines()
        last = text[-1].strip() if text else ""
        if code == wasmtime.TrapCode.OUT_OF_FUEL:
            return ExecStatus.FUEL_EXHAUSTED, "fuel exhausted"
        if code == wasmtime.TrapCode.INTERRUPT:
            return ExecStatus.DEADLINE_EXCEEDED, "wall-clock deadline exceeded (epoch interrupt)"
        if watch.stopped is not None:
            return watch.stopped, last
        name = code.name if code is not None else "UNKNOWN"
        return ExecStatus.TRAP, f"{name}: {last}"

    @staticmethod
    def _call(
        store: wasmtime.Store,
        exports: Any,
        memory: wasmtime.Memory,
        params: bytes,
        input: bytes,
        memory_limit: int,
        entrypoint: str = RUN_EXPORT,
    ) -> tuple[GuestResult, int]:
        def fn(name: str) -> wasmtime.Func:
            f = exports[name]
            if not isinstance(f, wasmtime.Func):
                raise _GuestError(f"export {name!r} is not a function")
            return f

        version = fn("chimera_abi_version")(store)
        if version != ABI_VERSION:
            raise _GuestError(f"guest ABI version {version}, host speaks {ABI_VERSION}")

        def put(data: bytes) -> int:
            try:
                addr = int(fn("chimera_alloc")(store, len(data))) & 0xFFFFFFFF
            except wasmtime.Trap:
                # A guest allocator aborts when memory.grow is refused; the host
                # knows the request size, so it can tell whether the cap was hit.
                if memory.data_len(store) + len(data) > memory_limit:
                    raise _MemoryLimit(
                        f"chimera_alloc({len(data)}) cannot fit under the "
                        f"{memory_limit}-byte memory limit"
                    ) from None
                raise
            if addr == 0:
                if memory.data_len(store) + len(data) > memory_limit:
                    raise _MemoryLimit(f"chimera_alloc({len(data)}) refused at the memory limit")
                raise _GuestError(f"chimera_alloc({len(data)}) failed")
            if addr + len(data) > memory.data_len(store):
                raise _GuestError(f"chimera_alloc returned {addr}, outside memory")
            if data:
                memory.write(store, data, addr)
            return addr

        p = put(params)
        i = put(bytes(input))
        code = fn(entrypoint)(store, p, len(params), i, len(input))
        ptr = fn("chimera_result_ptr")(store) & 0xFFFFFFFF
        length = fn("chimera_result_len")(store) & 0xFFFFFFFF
        if ptr + length > memory.data_len(store):
            raise _GuestError(f"result [{ptr}, {ptr + length}) lies outside memory")
        raw = bytes(memory.read(store, ptr, ptr + length))
        if code != 0:
            name = GUEST_STATUS_NAMES.get(code, f"status {code}")
            text = raw[:1024].decode("utf-8", "replace")
            raise _GuestError(f"guest returned {name}: {text}", code)
        try:
            return decode_result(raw), code
        except AbiError as exc:
            raise _GuestError(f"bad result record: {exc}") from None
