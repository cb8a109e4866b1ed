"""The hub's requirement() reaches one repository per wheel, with its locked deps."""

import importlib
import importlib.util
from pathlib import Path


def _repository_of(module: str) -> str:
    origin = importlib.import_module(module).__file__
    assert origin is not None
    parts = Path(origin).parts
    # .../external/<repository>/site-packages/<module>/...
    return parts[parts.index("site-packages") - 1]


def test_dependencies_come_from_their_own_wheel_repositories() -> None:
    # Only requirement("jsonschema") is a dep of this test; the rest arrive as
    # jsonschema's metadata requires them.
    assert _repository_of("jsonschema") == "pypi_jsonschema"
    assert _repository_of("attrs") == "pypi_attrs"
    assert _repository_of("referencing") == "pypi_referencing"
    assert _repository_of("rpds") == "pypi_rpds_py"
    assert _repository_of("jsonschema_specifications") == "pypi_jsonschema_specifications"


def test_wheels_nobody_requires_stay_out() -> None:
    assert importlib.util.find_spec("numpy") is None
    assert importlib.util.find_spec("jax") is None
