"""The shared test helpers (chimera.testing.helpers) do what the tests rely on."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from chimera.testing.helpers import FakeClock, free_port, wait_until


def test_free_port_can_be_bound_on_loopback() -> None:
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        assert s.getsockname()[1] == port


def test_fake_clock_moves_only_when_advanced_and_never_back() -> None:
    clock = FakeClock(50.0)
    assert clock() == clock.now == 50.0
    time.sleep(0.01)
    assert clock() == 50.0
    clock.advance(2.5)
    assert clock() == 52.5
    with pytest.raises(ValueError, match="does not go back"):
        clock.advance(-1)
    assert FakeClock()() == 1000.0


def test_fake_clock_is_safe_to_advance_from_many_threads() -> None:
    clock = FakeClock(0.0)
    threads = [
        threading.Thread(target=lambda: [clock.advance(1.0) for _ in range(1000)]) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert clock() == 4000.0


def test_wait_until_returns_once_the_condition_holds() -> None:
    flag = threading.Event()
    threading.Timer(0.05, flag.set).start()
    started = time.monotonic()
    wait_until(flag.is_set, timeout=5, what="the flag")
    assert time.monotonic() - started < 4


def test_wait_until_names_what_it_waited_for() -> None:
    with pytest.raises(AssertionError, match="the impossible not reached in 0.05s"):
        wait_until(lambda: False, timeout=0.05, what="the impossible")
