"""bazel run //tools/python:interpreter: the interpreter Bazel runs Python with.

The pinned toolchain's interpreter is /usr/bin/python3.11, or $CHIMERA_PYTHON's at
fetch time (tools/python/private/python_repository.bzl); this prints which one this
output base took, and its version.
"""

import sys


def main() -> None:
    print(f"{sys.executable} (Python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
