"""py_pytest_test: a py_test whose sources are run by pytest."""

load(":requirement.bzl", "requirement")

_RUNNER = "//tools/python/private:pytest_main.py"

_PYTEST = requirement("pytest")

def py_pytest_test(name, srcs, deps = [], args = [], **kwargs):
    """Runs pytest over `srcs` under `bazel test`, with JUnit XML for Bazel's test report.

    Args:
      name: target name.
      srcs: test modules (test_*.py).
      deps: libraries the tests import.
      args: extra pytest arguments.
      **kwargs: passed to py_test (data, size, tags, env, ...).
    """
    native.py_test(
        name = name,
        srcs = srcs + [_RUNNER],
        main = _RUNNER,
        args = ["$(rootpath %s)" % src for src in srcs] + args,
        deps = deps + [_PYTEST] if _PYTEST not in deps else deps,
        python_version = "PY3",
        srcs_version = "PY3",
        **kwargs
    )
