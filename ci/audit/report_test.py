"""report.py: every finding in the table with its fix versions; only reviewed ignores
hide a finding; packages pip-audit could not audit fail the step; stale ignores show."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import report

ROOT = Path(os.environ.get("TEST_SRCDIR", ".")) / os.environ.get("TEST_WORKSPACE", "chimera")
FINDINGS = ROOT / "ci/audit/testdata/pip_audit_findings.json"
COMMITTED_IGNORES = ROOT / "ci/audit/ignore.json"


def _ignores(tmp_path: Path, *entries: dict) -> Path:
    path = tmp_path / "ignore.json"
    path.write_text(json.dumps({"ignore": list(entries)}))
    return path


def _audit(tmp_path: Path, deps: list) -> Path:
    path = tmp_path / "audit.json"
    path.write_text(json.dumps({"dependencies": deps, "fixes": []}))
    return path


def test_table_lists_fix_versions_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert report.run([str(FINDINGS), "--ignore", str(COMMITTED_IGNORES)]) == 1
    out = capsys.readouterr().out
    assert "3 packages audited, 3 known vulnerabilities, 3 open, 0 ignored" in out
    row = next(line for line in out.splitlines() if "PYSEC-2099-1" in line)
    assert "examplepkg" in row and "1.0.1, 1.1.0" in row and "CVE-2099-0001" in row and "OPEN" in row
    assert "none yet" in next(line for line in out.splitlines() if "GHSA-dddd-eeee-ffff" in line)
    assert "NOT AUDITED: notonpypi" in out


def test_reviewed_ignore_hides_by_alias_and_stale_ones_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ignores = _ignores(
        tmp_path,
        {"id": "CVE-2099-0007", "package": "otherpkg", "reason": "only the CLI is affected; we import the library",
         "reviewed": "2026-12-01"},
        {"id": "PYSEC-2000-1", "package": "gone", "reason": "fixed upstream", "reviewed": "2026-11-01"},
    )
    deps = [{"name": "otherpkg", "version": "3.2.1",
             "vulns": [{"id": "PYSEC-2099-7", "fix_versions": ["3.2.2"], "aliases": ["CVE-2099-0007"]}]}]
    assert report.run([str(_audit(tmp_path, deps)), "--ignore", str(ignores)]) == 0
    out = capsys.readouterr().out
    assert "1 known vulnerabilities, 0 open, 1 ignored" in out
    assert "ignored: only the CLI is affected; we import the library (reviewed 2026-12-01)" in out
    assert "stale ignore (no longer found; remove it from ignore.json): PYSEC-2000-1" in out


def test_clean_audit_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deps = [{"name": "absl-py", "version": "2.5.1", "vulns": []}]
    assert report.run([str(_audit(tmp_path, deps)), "--ignore", str(COMMITTED_IGNORES)]) == 0
    assert "1 packages audited, 0 known vulnerabilities, 0 open" in capsys.readouterr().out


@pytest.mark.parametrize("entry, message", [
    ({"id": "X-1", "package": "p", "reviewed": "2026-12-01"}, "lacks reason"),
    ({"id": "X-1", "package": "p", "reason": "  ", "reviewed": ""}, "lacks reason, reviewed"),
])
def test_ignore_entries_need_a_reason_and_a_review(tmp_path: Path, entry: dict, message: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert report.run([str(FINDINGS), "--ignore", str(_ignores(tmp_path, entry))]) == 2
    assert message in capsys.readouterr().err


def test_not_pip_audit_output_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    assert report.run([str(bad)]) == 2
    assert "not pip-audit JSON output" in capsys.readouterr().err
