"""Tests that need a package CI installs (`tools/bootstrap.sh --optional`:
PostgreSQL, Prometheus, chromium, umoci, skopeo).

Where the package is absent such a test skips, saying why. A skip exits 0 and
Bazel reports the test PASSED, so where the set-up should have installed the
package (CI sets CHIMERA_REQUIRE_OPTIONAL=1, and .bazelrc passes it to tests)
a missing package fails the test instead. CI also fails on any skip that
ci/declared_skips.txt does not list (ci/skips.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

ENV = "CHIMERA_REQUIRE_OPTIONAL"


def required() -> bool:
    """Whether this run must have every optional package (CHIMERA_REQUIRE_OPTIONAL=1)."""
    value = os.environ.get(ENV, "")
    if value not in ("", "0", "1"):
        pytest.fail(f"{ENV}={value!r}: expected 1 (required), 0 or unset", pytrace=False)
    return value == "1"


def require(missing: str | None) -> None:
    """Nothing when `missing` is None; otherwise skips the calling test with
    `missing` as the reason, or fails it under CHIMERA_REQUIRE_OPTIONAL=1."""
    if missing is None:
        return
    if required():
        pytest.fail(f"{missing}, but {ENV}=1: the set-up should have installed it", pytrace=False)
    pytest.skip(missing)


def every_test_requires(missing: str | None) -> Callable[[], Iterator[None]]:
    """An autouse fixture applying `require(missing)` to each test of the module
    that assigns it (`_prometheus = optional.every_test_requires(...)`): each
    test is skipped, or failed, under its own name."""

    @pytest.fixture(autouse=True)
    def _requirement() -> Iterator[None]:
        require(missing)
        yield

    return _requirement
