"""Tests of the breaking-change checker.

Small descriptor sets are built in code so each case states exactly what
changed; one more case runs the checker on the committed chimera baseline to
show it works on the real contracts.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

import breaking

FieldProto = descriptor_pb2.FieldDescriptorProto
FILE = "demo/v1/demo.proto"


def _baseline() -> descriptor_pb2.FileDescriptorSet:
    """demo.v1: message Job {string id = 1; int64 size_bytes = 2; repeated string tags = 3},
    enum State {STATE_UNSPECIFIED = 0; STATE_DONE = 1}, service JobService {Run, Watch (server streaming)}."""
    fds = descriptor_pb2.FileDescriptorSet()
    f = fds.file.add(name=FILE, package="demo.v1", syntax="proto3")
    job = f.message_type.add(name="Job")
    job.field.add(name="id", number=1, type=FieldProto.TYPE_STRING, label=FieldProto.LABEL_OPTIONAL)
    job.field.add(name="size_bytes", number=2, type=FieldProto.TYPE_INT64, label=FieldProto.LABEL_OPTIONAL)
    job.field.add(name="tags", number=3, type=FieldProto.TYPE_STRING, label=FieldProto.LABEL_REPEATED)
    f.message_type.add(name="Empty")
    state = f.enum_type.add(name="State")
    state.value.add(name="STATE_UNSPECIFIED", number=0)
    state.value.add(name="STATE_DONE", number=1)
    svc = f.service.add(name="JobService")
    svc.method.add(name="Run", input_type=".demo.v1.Job", output_type=".demo.v1.Empty")
    svc.method.add(
        name="Watch", input_type=".demo.v1.Empty", output_type=".demo.v1.Job", server_streaming=True
    )
    return fds


def _job(fds: descriptor_pb2.FileDescriptorSet) -> descriptor_pb2.DescriptorProto:
    return fds.file[0].message_type[0]


def _write(tmp_path: Path, name: str, fds: descriptor_pb2.FileDescriptorSet) -> str:
    path = tmp_path / name
    path.write_bytes(fds.SerializeToString())
    return str(path)


def _run(
    tmp_path: Path, current: descriptor_pb2.FileDescriptorSet, capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[str]]:
    """Runs main() on the baseline and `current`; returns the exit status and stdout lines."""
    old = _write(tmp_path, "old.pb", _baseline())
    new = _write(tmp_path, "new.pb", current)
    rc = breaking.main(["--baseline", old, "--current", new])
    return rc, capsys.readouterr().out.splitlines()


def test_identical_sets_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = _run(tmp_path, _baseline(), capsys)
    assert rc == 0
    assert out == ["proto_breaking: no breaking changes (1 files compared)"]


def test_additions_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cur = _baseline()
    _job(cur).field.add(name="owner", number=4, type=FieldProto.TYPE_STRING, label=FieldProto.LABEL_OPTIONAL)
    cur.file[0].message_type.add(name="Extra")
    cur.file[0].enum_type[0].value.add(name="STATE_FAILED", number=2)
    cur.file[0].service[0].method.add(name="Stop", input_type=".demo.v1.Job", output_type=".demo.v1.Empty")
    rc, _ = _run(tmp_path, cur, capsys)
    assert rc == 0


def _rename_job_to_task(fds: descriptor_pb2.FileDescriptorSet) -> None:
    _job(fds).name = "Task"
    for method in fds.file[0].service[0].method:
        method.input_type = method.input_type.replace(".Job", ".Task")
        method.output_type = method.output_type.replace(".Job", ".Task")


def _remove_service_and_move_empty(fds: descriptor_pb2.FileDescriptorSet) -> None:
    del fds.file[0].service[0]
    other = fds.file.add(name="demo/v1/other.proto", package="demo.v1", syntax="proto3")
    other.message_type.add().CopyFrom(fds.file[0].message_type[1])
    del fds.file[0].message_type[1]


# Each case: a change to the baseline and the exact lines the checker must print.
_BREAKING_CHANGES = [
    pytest.param(
        lambda fds: _job(fds).field.pop(1),
        [f'{FILE}: message demo.v1.Job: field 2 "size_bytes" removed'],
        id="removed_field",
    ),
    pytest.param(
        lambda fds: setattr(_job(fds).field[1], "number", 7),
        [f'{FILE}: message demo.v1.Job: field "size_bytes" renumbered from 2 to 7'],
        id="renumbered_field",
    ),
    pytest.param(
        lambda fds: setattr(_job(fds).field[1], "name", "size"),
        [f'{FILE}: message demo.v1.Job: field 2 renamed from "size_bytes" to "size"'],
        id="renamed_field",
    ),
    pytest.param(
        lambda fds: setattr(_job(fds).field[1], "type", FieldProto.TYPE_UINT64),
        [f'{FILE}: message demo.v1.Job: field 2 "size_bytes" type changed from int64 to uint64'],
        id="changed_type",
    ),
    pytest.param(
        lambda fds: setattr(_job(fds).field[2], "label", FieldProto.LABEL_OPTIONAL),
        [f'{FILE}: message demo.v1.Job: field 3 "tags" label changed from repeated to optional'],
        id="changed_label",
    ),
    pytest.param(
        _rename_job_to_task,
        [
            f"{FILE}: message demo.v1.Job removed (renamed to demo.v1.Task?)",
            f"{FILE}: service demo.v1.JobService: rpc Run input type changed"
            " from demo.v1.Job to demo.v1.Task",
            f"{FILE}: service demo.v1.JobService: rpc Watch output type changed"
            " from demo.v1.Job to demo.v1.Task",
        ],
        id="renamed_message_with_hint",
    ),
    pytest.param(
        lambda fds: fds.file[0].service[0].method.pop(0),
        [f"{FILE}: service demo.v1.JobService: rpc Run removed"],
        id="removed_rpc",
    ),
    pytest.param(
        lambda fds: setattr(fds.file[0].service[0].method[1], "server_streaming", False),
        [
            f"{FILE}: service demo.v1.JobService: rpc Watch server streaming changed"
            " from true to false"
        ],
        id="streaming_change",
    ),
    pytest.param(
        lambda fds: setattr(fds.file[0].enum_type[0].value[1], "number", 5),
        [f'{FILE}: enum demo.v1.State: value "STATE_DONE" renumbered from 1 to 5'],
        id="renumbered_enum_value",
    ),
    pytest.param(
        lambda fds: fds.file[0].enum_type[0].value.pop(1),
        [f'{FILE}: enum demo.v1.State: value 1 "STATE_DONE" removed'],
        id="removed_enum_value",
    ),
    pytest.param(
        _remove_service_and_move_empty,
        [
            f"{FILE}: message demo.v1.Empty moved to demo/v1/other.proto",
            f"{FILE}: service demo.v1.JobService removed",
        ],
        id="removed_service_and_moved_message",
    ),
]


@pytest.mark.parametrize(("change", "expected"), _BREAKING_CHANGES)
def test_breaking_change_fails(
    change: Callable[[descriptor_pb2.FileDescriptorSet], object],
    expected: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cur = _baseline()
    change(cur)
    rc, out = _run(tmp_path, cur, capsys)
    assert rc == 1
    assert out == expected


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--baseline", "x.pb"],
        ["--baseline", "x.pb", "--current", "y.pb", "--bogus"],
    ],
)
def test_bad_arguments_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert breaking.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("proto_breaking: error: ") and err.count("\n") == 1


def test_unreadable_or_garbage_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _write(tmp_path, "good.pb", _baseline())
    assert breaking.main(["--baseline", str(tmp_path / "missing.pb"), "--current", good]) == 2
    assert "cannot read" in capsys.readouterr().err
    garbage = tmp_path / "garbage.pb"
    garbage.write_bytes(b"\xff\xff\xff\xff not a descriptor set")
    assert breaking.main(["--baseline", good, "--current", str(garbage)]) == 2
    assert "not a serialized FileDescriptorSet" in capsys.readouterr().err
    empty = tmp_path / "empty.pb"
    empty.write_bytes(b"")
    assert breaking.main(["--baseline", str(empty), "--current", good]) == 2


def _chimera_baseline() -> Path:
    """The committed chimera baseline: relative to the working directory (the
    runfiles root under Bazel, the repository root locally), else to this file."""
    relative = Path("proto/chimera/v1/baseline/descriptor_set.pb")
    for root in (Path(os.getcwd()), Path(__file__).resolve().parents[2]):
        if (root / relative).is_file():
            return root / relative
    raise FileNotFoundError(f"{relative} not found from {os.getcwd()} or {__file__}")


def test_chimera_baseline_against_itself_and_a_removed_rpc(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(_chimera_baseline())
    assert breaking.main(["--baseline", path, "--current", path]) == 0
    capsys.readouterr()

    fds = breaking.load_descriptor_set(path)
    execution = next(f for f in fds.file if f.name == "chimera/v1/execution.proto")
    methods = execution.service[0].method
    index = next(i for i, m in enumerate(methods) if m.name == "CancelTask")
    del methods[index]
    current = _write(tmp_path, "current.pb", fds)
    rc = breaking.main(["--baseline", path, "--current", current, "--exclude", "google/protobuf/"])
    assert rc == 1
    assert capsys.readouterr().out.splitlines() == [
        "chimera/v1/execution.proto: service chimera.v1.ExecutionService: rpc CancelTask removed"
    ]
