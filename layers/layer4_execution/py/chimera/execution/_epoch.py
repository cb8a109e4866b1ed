"""Per-store epoch-deadline callbacks (the one use of wasmtime's private FFI).

wasmtime-py exposes ``Store.set_epoch_deadline`` but not the C API's
``wasmtime_store_epoch_deadline_callback``; with only the former, reaching the
deadline always traps, so a running task can be stopped by time but not by a
cancel request. The callback lets the sandbox decide at every epoch tick:
continue for one more tick, or stop with a reason it records itself.

Everything version-specific is confined here. If the binding is missing
(another wasmtime-py release), :data:`AVAILABLE` is False and the sandbox
falls back to a fixed tick-count deadline (timeouts still work; running tasks
then finish instead of being cancelled).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import wasmtime

try:  # pragma: no cover - exercised implicitly by whichever branch applies
    from wasmtime import _ffi as _ffi

    _CALLBACK = ctypes.CFUNCTYPE(
        ctypes.c_size_t,
        ctypes.POINTER(_ffi.wasmtime_context_t),
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_uint64),
        ctypes.POINTER(ctypes.c_uint8),
    )
    _FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
    _install = _ffi.wasmtime_store_epoch_deadline_callback
    _error_new = _ffi.wasmtime_error_new
    AVAILABLE = True
except (ImportError, AttributeError):  # pragma: no cover
    AVAILABLE = False

_CONTINUE = 0  # WASMTIME_UPDATE_DEADLINE_CONTINUE


def install(store: wasmtime.Store, should_stop: Callable[[], str | None]) -> Any:
    """Makes ``store`` consult ``should_stop`` at every epoch tick.

    ``should_stop`` returns None to keep running (the deadline moves one tick
    on) or a message to stop the guest with a host error. The returned object
    keeps the ctypes callback alive; hold it until the store is no longer used.
    """
    if not AVAILABLE:
        raise RuntimeError("epoch deadline callbacks are not available in this wasmtime-py")

    def on_deadline(_ctx: Any, _env: Any, delta: Any, kind: Any) -> int:
        try:
            message = should_stop()
        except Exception as exc:  # never let a Python error escape into wasm
            message = f"deadline hook failed: {exc}"
        if message is not None:
            err = _error_new(message.encode("utf-8", "replace"))
            return ctypes.cast(err, ctypes.c_void_p).value or 0
        delta[0] = 1
        kind[0] = _CONTINUE
        return 0

    callback = _CALLBACK(on_deadline)
    _install(store.ptr(), callback, None, _FINALIZER())  # NULL finalizer
    return callback
