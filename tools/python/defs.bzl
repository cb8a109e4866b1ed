"""Public API of Chimera's Python rules.

    load("//tools/python:defs.bzl", "py_pytest_test", "requirement")

    py_library(name = "lib", srcs = [...], deps = [requirement("grpcio")])
    py_pytest_test(name = "lib_test", srcs = ["tests/test_lib.py"], deps = [":lib"])

Third-party packages come only from third_party/python/requirements_lock.txt
(hash-pinned; regenerate with tools/python/lock.sh): the hub @pypi aliases each
to its own wheel repository (@pypi_<name>), fetched only when a build needs it.
The interpreter is the pinned Python registered in WORKSPACE.
"""

load("//tools/python/private:pytest.bzl", _py_pytest_test = "py_pytest_test")
load("//tools/python/private:requirement.bzl", _requirement = "requirement")

py_pytest_test = _py_pytest_test
requirement = _requirement
