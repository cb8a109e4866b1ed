"""ci/skips.py on hand-made testlogs trees: undeclared skips fail, declared ones
pass, --expected wants the exact list, and empty or bad input exits 2."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ci import skips

CI = Path(os.environ.get("TEST_SRCDIR", ".")) / os.environ.get("TEST_WORKSPACE", "chimera") / "ci"

PASSED = '<testsuites><testsuite><testcase classname="m" name="test_ok" time="0.1"/></testsuite></testsuites>'
SKIPPED = ('<testsuites><testsuite><testcase classname="m" name="test_ok"/>'
           '<testcase classname="m" name="test_pg[postgresql]"><skipped type="pytest.skip" message="no PostgreSQL">'
           'x.py:3: no PostgreSQL</skipped></testcase></testsuite></testsuites>')


def testlogs(tmp_path: Path, **tests: str) -> Path:
    root = tmp_path / "testlogs"
    for path, xml in tests.items():
        target = root / path.replace("__", "/") / "test.xml"
        target.parent.mkdir(parents=True)
        target.write_text(xml)
    return root


def listing(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "list.txt"
    path.write_text("# reviewed\n" + "".join(f"{line}\n" for line in lines))
    return path


def run(logs: Path, mode: str, listed: Path) -> int:
    return skips.main(["--testlogs", str(logs), f"--{mode}", str(listed)])


def test_labels_come_from_the_testlogs_path_without_shards(tmp_path: Path) -> None:
    logs = testlogs(tmp_path, layers__l7__store_test__shard_1_of_2=SKIPPED, tools__gate_test=PASSED)
    read, found = skips.collect(logs)
    assert read == 2
    assert found == {skips.Skip("//layers/l7:store_test", "test_pg[postgresql]"): "no PostgreSQL"}


def test_an_undeclared_skip_fails_and_a_declared_one_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logs = testlogs(tmp_path, layers__l7__store_test=SKIPPED, tools__gate_test=PASSED)
    assert run(logs, "declared", listing(tmp_path)) == 1
    assert "NOT LISTED: //layers/l7:store_test test_pg[postgresql]: no PostgreSQL" in capsys.readouterr().out
    declared = listing(tmp_path, "//layers/l7:store_test  test_pg[postgresql]  PostgreSQL only where installed")
    assert run(logs, "declared", declared) == 0
    clean = testlogs(tmp_path / "clean", tools__gate_test=PASSED)
    assert run(clean, "declared", declared) == 0  # declared, did not skip: a note
    assert "note: declared, did not skip" in capsys.readouterr().out


def test_expected_wants_exactly_the_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logs = testlogs(tmp_path, layers__l7__store_test=SKIPPED)
    exact = listing(tmp_path, "//layers/l7:store_test test_pg[postgresql] no PostgreSQL")
    assert run(logs, "expected", exact) == 0
    more = listing(tmp_path, "//layers/l7:store_test test_pg[postgresql] no PostgreSQL",
                   "//tools/monitoring:prometheus_test test_up no prometheus")
    assert run(logs, "expected", more) == 1
    assert "EXPECTED, did not skip: //tools/monitoring:prometheus_test test_up" in capsys.readouterr().out
    assert run(logs, "expected", listing(tmp_path)) == 1


@pytest.mark.parametrize("line", ["store_test test_pg reason", "//l7:store_test test_pg", "//l7:t a r\n//l7:t a again"])
def test_a_bad_list_exits_2(tmp_path: Path, line: str, capsys: pytest.CaptureFixture[str]) -> None:
    logs = testlogs(tmp_path, tools__gate_test=PASSED)
    assert run(logs, "declared", listing(tmp_path, line)) == 2
    assert "bad input" in capsys.readouterr().err


def test_nothing_to_check_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert run(tmp_path / "empty", "declared", listing(tmp_path)) == 2
    assert "no test.xml" in capsys.readouterr().err
    assert run(tmp_path / "absent", "declared", listing(tmp_path)) == 2
    broken = testlogs(tmp_path, tools__gate_test="<testsuites>")
    assert run(broken, "declared", listing(tmp_path)) == 2


def test_the_committed_lists_parse() -> None:
    assert skips.load_list(CI / "declared_skips.txt") == {}  # CI installs every optional package
    assert len(skips.load_list(CI / "fresh_machine_skips.txt")) > 0
