"""chimera.wasm.artifacts: the lookup order every layer relies on, and load_json."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chimera.wasm.artifacts import Artifact, load_json, locate

ECHO = Artifact("rust/wasm_export/echo_module.wasm", "CHIMERA_WASM_ECHO_MODULE")


def test_finds_a_runfile_under_bazel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ECHO.env_var, raising=False)
    path = locate(ECHO)
    assert path.is_file() and path.read_bytes()[:4] == b"\0asm"
    assert locate((ECHO.workspace_path, ECHO.env_var)) == path  # a plain pair works too


def test_environment_variable_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    override = tmp_path / "other.wasm"
    monkeypatch.setenv(ECHO.env_var, str(override))
    assert locate(ECHO) == override  # taken as given, even before it exists


def test_working_directory_is_the_last_resort(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for var in ("RUNFILES_DIR", "TEST_SRCDIR", "RUNFILES_MANIFEST_FILE"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    assert locate(Artifact("data/x.json", "CHIMERA_TEST_UNSET_X")) == Path("data/x.json")


def test_missing_file_names_the_variable_and_every_place_tried(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TEST_SRCDIR", str(tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        locate(Artifact("no/such.wasm", "CHIMERA_TEST_UNSET_Y"))
    message = str(err.value)
    assert message.startswith("no/such.wasm not found; set CHIMERA_TEST_UNSET_Y")
    assert str(tmp_path / "chimera" / "no/such.wasm") in message
    assert str(Path.cwd() / "no/such.wasm") in message


def test_load_json_reads_the_given_file_or_the_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    given, default = tmp_path / "given.json", tmp_path / "default.json"
    given.write_text('{"a": 1}', encoding="utf-8")
    default.write_text("[2]", encoding="utf-8")
    settings = Artifact("no/such.json", "CHIMERA_TEST_SETTINGS")
    assert load_json(given, settings) == ({"a": 1}, given)
    assert load_json(str(given), settings) == ({"a": 1}, given)
    monkeypatch.setenv(settings.env_var, str(default))
    assert load_json(None, settings) == ([2], default)


def test_load_json_names_a_file_that_is_not_json(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{nope", encoding="utf-8")
    with pytest.raises(ValueError, match="^" + re.escape(f"{bad}: not valid JSON: ")):
        load_json(bad, ECHO)
    with pytest.raises(FileNotFoundError):
        load_json(tmp_path / "missing.json", ECHO)
