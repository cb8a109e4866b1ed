"""Starts coverage.py in every Python process of a test run by ci/coverage.sh, which puts
this folder on PYTHONPATH (the py_test stub keeps it, after the test's own paths) and
names the rc file in COVERAGE_PROCESS_START. Inert without that variable."""

import os

if os.environ.get("COVERAGE_PROCESS_START"):
    import coverage

    coverage.process_startup()
