"""Command-line client for Chimera services (``python -m chimera.cli --help``)."""

from chimera.cli.main import main

__all__ = ["main"]
