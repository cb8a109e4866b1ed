"""Entry point: `bazel run //tools/release -- <command>` or `python3 tools/release/release.py <command>`."""

import sys

from chimera_release.cli import main

if __name__ == "__main__":
    sys.exit(main())
