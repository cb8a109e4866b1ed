"""Cancellation token shared by the scheduler and the sandbox.

Kept free of wasmtime so the scheduler can be used (and tested) with any
executor; the sandbox polls the token from its epoch-deadline hook, which is
how a *running* wasm task is stopped.
"""

from __future__ import annotations

import threading


class CancelToken:
    """A one-way cancellation flag with an optional absolute deadline.

    ``deadline`` is in the clock of ``time.monotonic()``; the sandbox stops a
    run at the earlier of this deadline and its own timeout limit.
    """

    __slots__ = ("_event", "deadline", "reason")

    def __init__(self, deadline: float | None = None) -> None:
        self._event = threading.Event()
        self.deadline = deadline
        self.reason = ""

    def cancel(self, reason: str = "cancelled") -> None:
        """Requests cancellation; idempotent (the first reason wins)."""
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._event.is_set()
