#!/usr/bin/env python3
"""Skips are outcomes: every skipped test case in Bazel's test.xml files, checked
against a reviewed list.

    python3 ci/skips.py --testlogs bazel-testlogs --declared ci/declared_skips.txt
    python3 ci/skips.py --testlogs DIR --expected ci/fresh_machine_skips.txt

A pytest skip exits 0, so Bazel reports the test PASSED; the skip is only in
the test's XML (tools/python/private/pytest_main.py writes JUnit XML).
--declared: fails on any skip the list does not declare (a declared entry that
did not skip is reported, not failed: the reason may hold only elsewhere).
--expected: fails unless the skips are exactly the list, both ways.

A list holds one skip a line: the Bazel test label, the test case's name as
pytest reports it, and the reason, separated by whitespace; `#` starts a comment.
A list without entries is allowed; a testlogs tree without any test.xml is an
error (nothing was checked). Exit 1: skips outside the list; 2: bad input.
"""

from __future__ import annotations

import argparse
import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

# testlogs/<package>/<name>/[shard_i_of_n/|run_i_of_n/]*test.xml
_REPEAT = re.compile(r"^(shard|run|attempt)_\d+(_of_\d+)?$")


class BadInput(Exception):
    pass


@dataclass(frozen=True, order=True)
class Skip:
    label: str
    test: str


def label_of(testlogs: Path, xml: Path) -> str:
    parts = [p for p in xml.parent.relative_to(testlogs).parts if not _REPEAT.match(p)]
    if not parts:
        raise BadInput(f"{xml}: not under a test's directory in {testlogs}")
    return f"//{'/'.join(parts[:-1])}:{parts[-1]}"


def collect(testlogs: Path) -> tuple[int, dict[Skip, str]]:
    """(number of test.xml files read, {skip: its reason})."""
    if not testlogs.is_dir():
        raise BadInput(f"--testlogs {testlogs}: not a directory (did `bazel test` run?)")
    files = sorted(testlogs.rglob("test.xml"))
    if not files:
        raise BadInput(f"--testlogs {testlogs}: no test.xml under it, so nothing would be checked")
    skips: dict[Skip, str] = {}
    for xml in files:
        try:
            root = ET.parse(xml).getroot()
        except ET.ParseError as err:
            raise BadInput(f"{xml}: not XML: {err}") from err
        for case in root.iter("testcase"):
            skipped = case.find("skipped")
            if skipped is not None:
                reason = skipped.get("message") or (skipped.text or "").strip()
                skips[Skip(label_of(testlogs, xml), case.get("name", ""))] = reason
    return len(files), skips


def load_list(path: Path) -> dict[Skip, str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise BadInput(f"{path}: {err.strerror}") from err
    entries: dict[Skip, str] = {}
    for number, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split(None, 2)
        if len(fields) < 3 or not fields[0].startswith("//") or ":" not in fields[0]:
            raise BadInput(f"{path}:{number}: expected '//package:test  test_case  reason', got {line!r}")
        skip = Skip(fields[0], fields[1])
        if skip in entries:
            raise BadInput(f"{path}:{number}: {skip.label} {skip.test} is listed twice")
        entries[skip] = fields[2]
    return entries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ci/skips.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--testlogs", type=Path, required=True, help="bazel-testlogs of the run to check")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--declared", type=Path, help="skips allowed (CI: ci/declared_skips.txt)")
    mode.add_argument("--expected", type=Path, help="exactly the skips expected (ci/fresh_machine_skips.txt)")
    args = parser.parse_args(argv)
    try:
        listed = load_list(args.declared or args.expected)
        read, skips = collect(args.testlogs)
    except BadInput as err:
        print(f"skips: bad input: {err}", file=sys.stderr)
        return 2

    unlisted = sorted(set(skips) - set(listed))
    absent = sorted(set(listed) - set(skips))
    print(f"skips: {read} test.xml files read, {len(skips)} skipped test cases, {len(listed)} listed "
          f"in {args.declared or args.expected}")
    for skip in sorted(skips):
        tag = "listed" if skip in listed else "NOT LISTED"
        print(f"  {tag}: {skip.label} {skip.test}: {skips[skip]}")
    for skip in absent:
        tag = "EXPECTED, did not skip" if args.expected else "note: declared, did not skip"
        print(f"  {tag}: {skip.label} {skip.test} ({listed[skip]})")
    failed = bool(unlisted) or bool(args.expected and absent)
    print(f"skips: {'FAILED' if failed else 'OK'}: {len(unlisted)} not listed"
          + (f", {len(absent)} expected but not skipped" if args.expected else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
