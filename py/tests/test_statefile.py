"""chimera.framework.statefile: whole-file replacement and the reading side's answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from chimera.framework.statefile import read_json, write_atomically, write_json


def test_a_record_is_replaced_whole_and_leaves_no_partial_file(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    assert read_json(path) is None  # nothing recorded yet
    write_json(path, {"b": 1, "a": [1.5, None]})
    write_json(path, {"version": 2})
    assert read_json(path) == {"version": 2}
    assert path.read_text() == '{"version":2}\n'
    write_atomically(tmp_path / "bytes.bin", b"\x00\x01")
    assert (tmp_path / "bytes.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bytes.bin", "record.json"]


def test_a_failed_write_keeps_the_old_record(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    write_json(path, {"kept": True})
    with pytest.raises(TypeError):
        write_json(path, {"not json": object()})
    assert read_json(path) == {"kept": True}
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_a_corrupt_record_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    path.write_text("{torn")
    with pytest.raises(ValueError, match="record.json: not a valid state record"):
        read_json(path)
