import hashlib
import json
import os
from pathlib import Path

import pytest

from tools.host_tools.host_tool import recorded


def _record(name: str) -> dict:
    return json.loads((Path(os.environ["TEST_SRCDIR"]) / "host_tools" / f"{name}.json").read_text())


def test_the_record_names_the_binary_bazel_runs_and_its_digests():
    bazel = recorded("bazel")
    assert bazel.missing is None
    assert bazel.path == "/usr/bin/bazel"
    assert bazel.version
    digests = _record("bazel")["sha256"]
    assert "/usr/bin/bazel" in digests
    # The record is what the action key holds: it must describe the files as they are.
    for path, digest in digests.items():
        assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == digest, path


def test_an_undeclared_tool_is_refused_not_run():
    with pytest.raises(LookupError, match=r"add @host_tools//:prometheus to the test's data"):
        recorded("prometheus")
