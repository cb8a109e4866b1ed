"""Shared fixtures: one sandbox per test module and the real kernel module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chimera.execution.artifacts import kernel_wasm_bytes
from chimera.execution.sandbox import CompiledModule, Sandbox


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(tick_ms=2.0) as sb:
        yield sb


@pytest.fixture(scope="module")
def kernel(sandbox: Sandbox) -> CompiledModule:
    return sandbox.compile(kernel_wasm_bytes())
