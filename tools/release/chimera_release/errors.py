"""The one error type the CLI turns into exit status 2 and a single message."""


class UsageError(Exception):
    """Bad input from the caller: unknown revision, dirty tree, bad flag value."""
