"""Checks a report against the specification's build_metrics.json format
(tools/metrics/build_metrics.schema.json, JSON Schema 2020-12)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_FILE = Path(__file__).absolute().parents[1] / "build_metrics.schema.json"


@cache
def schema_validator(schema_file: Path) -> jsonschema.protocols.Validator:
    """A validator for the JSON Schema in ``schema_file`` (of the draft its ``$schema``
    names), once the schema itself is checked against that draft."""
    schema = json.loads(schema_file.read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def problems(report: Any) -> list[str]:
    """Every way `report` departs from the specification's format, as "path: message"
    lines (empty when it conforms), sorted for stable output."""
    found = []
    for error in schema_validator(SCHEMA_FILE).iter_errors(report):
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        found.append(f"{where}: {error.message}")
    return sorted(found)
