"""`check`: a manifest against its JSON Schema and an SBOM against CycloneDX's."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import jsonschema
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

SCHEMA_FILE = pathlib.Path(__file__).resolve().parent.parent / "schemas" / "manifest.schema.json"


def manifest_problems(document: Any) -> list[str]:
    schema = json.loads(SCHEMA_FILE.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    return [f"manifest: {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))]


def sbom_problems(text: str) -> list[str]:
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    return [] if error is None else [f"sbom: {error}"]
