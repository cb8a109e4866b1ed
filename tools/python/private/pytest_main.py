"""Entry point of every py_pytest_test: runs pytest on the test's sources.

Bazel runs tests in a read-only runfiles tree, so pytest's cache is disabled;
results go to $XML_OUTPUT_FILE so Bazel reports individual test cases, skips
included (<skipped>, collected by ci/skips.py: a skip exits 0, so Bazel says
PASSED); -rs also lists each skip and its reason in the test's log.
"""

import os
import sys

import pytest


def main(argv: list[str]) -> int:
    args = ["-p", "no:cacheprovider", "-q", "-rs", *argv]
    xml_output = os.environ.get("XML_OUTPUT_FILE")
    if xml_output:
        args.append(f"--junitxml={xml_output}")
    return int(pytest.main(args))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
