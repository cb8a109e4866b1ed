"""What tests across the repository share: a free loopback port, a clock the test
moves by hand, and polling until a condition holds.

``chimera.testing`` is a namespace package: ``chimera.testing.v1`` (the echo
contract of the framework's own tests) is generated into it from
``py/tests/testdata``, which is why these helpers are a module of it rather
than its ``__init__``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from chimera.framework.processes import free_ports

__all__ = ["FakeClock", "free_port", "wait_until"]


def free_port() -> int:
    """A loopback port nobody listens on now (for a server to bind, or a client to fail on)."""
    return free_ports(1)[0]


class FakeClock:
    """A ``time.time``-like clock that moves only when the test calls :meth:`advance`.

    Safe to read from the threads of the code under test while the test moves it.
    """

    def __init__(self, now: float = 1000.0) -> None:
        self._now = now
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    @property
    def now(self) -> float:
        return self()

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a clock does not go back: advance({seconds})")
        with self._lock:
            self._now += seconds


def wait_until(
    condition: Callable[[], bool],
    timeout: float = 15.0,
    what: str = "condition",
    interval: float = 0.01,
) -> None:
    """Polls ``condition`` every ``interval`` seconds; AssertionError naming ``what``
    if it still does not hold once ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached in {timeout}s")
        time.sleep(interval)
