"""Shared fixtures: one generated repository and one Bazel server per test module."""

from __future__ import annotations

import os
import pathlib
from typing import Iterator

import pytest

from fixture import FixtureRepo, shutdown_bazel


@pytest.fixture(scope="module")
def workdir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[pathlib.Path]:
    # Short paths: Bazel's server socket path must stay under the Unix limit.
    base = pathlib.Path(os.environ.get("TEST_TMPDIR") or tmp_path_factory.mktemp("release"))
    root = base / request.module.__name__.removeprefix("test_")[:3]
    yield root
    shutdown_bazel(root)


@pytest.fixture(scope="module")
def repo(workdir: pathlib.Path) -> FixtureRepo:
    return FixtureRepo(workdir / "repo")
