"""The main-job demo runs end to end, standalone and through the 3->4 gate."""

from __future__ import annotations

import pytest

import demo
from service_support import verdict_server


def test_standalone_demo_succeeds_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main(["--tasks", "6", "--jobs", "30"]) == 0
    out = capsys.readouterr().out
    assert "STANDALONE: --trust-unvalidated-modules" in out
    assert "SUCCEEDED=6" in out and "KPI reports received: 12/12" in out
    assert "Layer 4 demo: OK" in out


def test_demo_through_the_verdict_gate(capsys: pytest.CaptureFixture[str]) -> None:
    with verdict_server() as (server, verdicts):
        assert demo.main(["--tasks", "3", "--validation-target", server.target]) == 0
        assert verdicts.calls == 1  # DeployModule asked for the verdict
    out = capsys.readouterr().out
    assert "3->4 gate ON" in out and "STANDALONE" not in out
