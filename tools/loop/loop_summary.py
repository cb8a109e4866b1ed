"""The closed loop's summary and its JSON Schema (loop_summary.schema.json, draft 2020-12),
checked where the summary is written (:func:`write`, the main job) and where it is read
(:func:`load`, the loop page).

A file holds the loop's summary at its top level (as ``closed_loop.run`` returns it) or
under a ``closed_loop`` key (the main job's summary). A summary that breaks the schema
is refused with one :class:`SummaryError` naming the first field that breaks it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema

from tools.metrics.report.spec_format import schema_validator

__all__ = ["LOOP_KEY", "SCHEMA_FILE", "SummaryError", "check", "load", "write"]

SCHEMA_FILE = Path(__file__).absolute().parent / "loop_summary.schema.json"
#: Where the main job's summary holds the loop's.
LOOP_KEY = "closed_loop"

_JSON_TYPES = {
    "object": "a JSON object", "array": "a list", "string": "a string", "number": "a number",
    "integer": "an integer", "boolean": "true or false", "null": "null",
}


class SummaryError(ValueError):
    """The summary is not a closed-loop summary; the message names the field."""


def _json_type(value: Any) -> str:
    for name, python in (("null", type(None)), ("boolean", bool), ("string", str), ("array", list),
                         ("object", dict), ("number", (int, float))):
        if isinstance(value, python):
            return _JSON_TYPES[name]
    return type(value).__name__


def _problem(error: jsonschema.ValidationError, where: str) -> str:
    """'<field>: <what is wrong>', the field as a path from ``where`` (``a.b[2].c``)."""
    path = where + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    if error.validator == "required":
        missing = next(k for k in error.validator_value if k not in error.instance)
        return f"{path}.{missing}: is required"
    if error.validator == "type":
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        expected = " or ".join(_JSON_TYPES[t] for t in wanted)
        got = repr(error.instance) if not isinstance(error.instance, (dict, list)) else _json_type(error.instance)
        return f"{path}: expected {expected}, got {got}"
    return f"{path}: {error.message[:200]}"


def check(summary: Any, where: str = "summary") -> dict[str, Any]:
    """The loop's summary if it keeps the schema (and its paired A/B arms are of equal
    length, which a schema cannot say); SummaryError naming the field otherwise."""
    error = jsonschema.exceptions.best_match(schema_validator(SCHEMA_FILE).iter_errors(summary))
    if error is not None:
        raise SummaryError(_problem(error, where))
    for family, loop in summary["families"].items():
        observations = loop.get("ab_test", {}).get("observations")
        if observations and len(observations["baseline"]) != len(observations["candidate"]):
            raise SummaryError(
                f"{where}.families.{family}.ab_test.observations: expected two lists of equal "
                f"length (got {len(observations['baseline'])} and {len(observations['candidate'])})"
            )
    return summary


def load(path: Path) -> tuple[dict[str, Any], str]:
    """(the loop summary, where in the file it was): the file's top level, or its `closed_loop`."""
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise SummaryError(f"{path}: {err.strerror or err}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SummaryError(f"{path}: not JSON ({err})") from None
    if isinstance(data, dict) and LOOP_KEY in data:
        return check(data[LOOP_KEY], LOOP_KEY), LOOP_KEY
    if isinstance(data, dict) and "families" not in data and "ok" not in data:
        raise SummaryError(f"{path}: neither a closed-loop summary (ok, reason, families) "
                           f"nor a file with a {LOOP_KEY} object")
    return check(data), ""


def write(path: Path, document: dict[str, Any]) -> None:
    """Writes ``document`` (the main job's summary) as JSON to ``path`` once the loop's
    summary in it (under ``closed_loop``, when there) keeps the schema.

    A summary that breaks it never replaces the file at ``path``: it goes to
    ``<name>.invalid.json`` beside it, so the run's facts are kept, and SummaryError
    names the field. The file is replaced in one step (no half-written summary)."""
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if LOOP_KEY in document:
            check(document[LOOP_KEY], LOOP_KEY)
    except SummaryError as err:
        kept = path.with_name(f"{path.stem}.invalid.json")
        kept.write_text(text)
        raise SummaryError(f"{err} (not written to {path}; kept as {kept})") from None
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    os.replace(partial, path)
