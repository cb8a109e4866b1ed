"""A missing optional package skips a test, or fails it under
CHIMERA_REQUIRE_OPTIONAL=1; checked on pytest's own outcomes in a child run."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

MODULE = '''
from tools.testing import optional

_absent = optional.every_test_requires("frobnicator is not installed")

def test_uses_the_absent_package():
    pass
'''

INSIDE = '''
from tools.testing import optional

def test_present():
    optional.require(None)

def test_absent():
    optional.require("postgres is not installed")
'''


def outcomes(tmp_path: Path, source: str, env_value: str | None) -> dict[str, str]:
    test = tmp_path / "test_child.py"
    test.write_text(source)
    report = tmp_path / "report.xml"
    env = {k: v for k, v in os.environ.items() if k != "CHIMERA_REQUIRE_OPTIONAL"}
    if env_value is not None:
        env["CHIMERA_REQUIRE_OPTIONAL"] = env_value
    env["PYTHONPATH"] = ":".join(sys.path)
    subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--junitxml={report}", str(test)],
                   env=env, cwd=tmp_path, capture_output=True, text=True, check=False)
    result = {}
    for case in ET.parse(report).iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("skipped", "failure", "error")]
        result[case.get("name")] = kinds[0] if kinds else "passed"
    return result


@pytest.mark.parametrize("env_value", [None, "0"])
def test_skips_where_not_required(tmp_path: Path, env_value: str | None) -> None:
    assert outcomes(tmp_path, MODULE, env_value) == {"test_uses_the_absent_package": "skipped"}
    assert outcomes(tmp_path, INSIDE, env_value) == {"test_present": "passed", "test_absent": "skipped"}


def test_fails_where_required(tmp_path: Path) -> None:
    assert outcomes(tmp_path, MODULE, "1") == {"test_uses_the_absent_package": "error"}  # in its fixture
    assert outcomes(tmp_path, INSIDE, "1") == {"test_present": "passed", "test_absent": "failure"}


def test_a_bad_setting_fails(tmp_path: Path) -> None:
    assert outcomes(tmp_path, INSIDE, "yes") == {"test_present": "passed", "test_absent": "failure"}
