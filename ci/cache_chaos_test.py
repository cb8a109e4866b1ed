"""ci/cache_chaos.py's pieces that need no Bazel or Buildbarn: the blob search and
flip in a sparse block file, the build event stream's final outputs, the JSON
stream reader, and the flags (exit 2 with one line)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from ci import cache_chaos


def sparse_file_with(tmp_path: Path, placements: dict[int, bytes], size: int = 64 << 20) -> Path:
    path = tmp_path / "blocks"
    with open(path, "wb") as device:
        device.truncate(size)
        for offset, data in placements.items():
            device.seek(offset)
            device.write(data)
    return path


def test_flips_one_byte_of_each_stored_copy_and_nothing_else(tmp_path):
    blob = os.urandom(100_000)
    other = os.urandom(50_000)
    blocks = sparse_file_with(tmp_path, {4096: other, 9 << 20: blob, 40 << 20: blob})
    before = blocks.read_bytes()
    flipped = cache_chaos.corrupt_blob_on_disk(blocks, blob)
    after = blocks.read_bytes()
    assert flipped == [(9 << 20) + 50_000, (40 << 20) + 50_000]
    changed = [i for i in range(0, len(after), 1 << 20) if after[i : i + (1 << 20)] != before[i : i + (1 << 20)]]
    assert changed == [9 << 20, 40 << 20]
    for offset in flipped:
        assert after[offset] == before[offset] ^ 0xFF
        assert sum(a != b for a, b in zip(after[offset - 10 : offset + 10], before[offset - 10 : offset + 10])) == 1
    assert after[4096 : 4096 + len(other)] == other


def test_a_blob_not_stored_is_not_found(tmp_path):
    blocks = sparse_file_with(tmp_path, {0: os.urandom(10_000)})
    assert cache_chaos.corrupt_blob_on_disk(blocks, os.urandom(10_000)) == []


def test_final_outputs_hash_the_named_sets_from_the_exec_root(tmp_path):
    execroot = tmp_path / "execroot"
    (execroot / "bazel-out/k8-fastbuild/bin/pkg").mkdir(parents=True)
    (execroot / "bazel-out/k8-fastbuild/bin/pkg/lib.rlib").write_bytes(b"rlib")
    events = [
        {"id": {"namedSet": {"id": "0"}}, "namedSetOfFiles": {"files": [
            # a remote cache hit's URI names the cache; the file is in the exec root all the same
            {"name": "pkg/lib.rlib", "uri": "bytestream://127.0.0.1:1/blobs/x/4", "pathPrefix": ["bazel-out", "k8-fastbuild", "bin"]},
        ]}},
        {"id": {"testSummary": {}}, "testSummary": {"overallStatus": "PASSED"}},
    ]
    stream = tmp_path / "bep.json"
    stream.write_text("".join(json.dumps(event, indent=1) + "\n" for event in events))
    parsed = cache_chaos.read_json_stream(stream)
    assert parsed == events
    assert cache_chaos.final_outputs(parsed, execroot) == {"bazel-out/k8-fastbuild/bin/pkg/lib.rlib": hashlib.sha256(b"rlib").hexdigest()}
    assert cache_chaos.tests_passed(parsed)
    assert not cache_chaos.tests_passed(parsed[:1])  # no test ran: not a pass


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--target", "layers/x"], "not a target label"),
        (["--kill-after-puts", "0"], "at least 1"),
        (["--case", "flood"], "invalid choice"),
        (["--build-timeout", "5"], "at least 30"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_flags_exit_2_with_one_line(argv, message, capsys):
    assert cache_chaos.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
