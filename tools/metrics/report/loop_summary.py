"""The closed loop's summary as the loop page reads it: from a file whose top level is
the loop's summary (`closed_loop --summary-out`), or whose `closed_loop` key holds it
(the main job's summary); every section the page draws is checked first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class SummaryError(ValueError):
    """The summary is not a closed-loop summary; the message names the field."""


# --- reading and checking ---------------------------------------------------------------


def _number(obj: dict[str, Any], key: str, where: str) -> float:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SummaryError(f"{where}.{key}: expected a number, got {value!r}")
    return float(value)


def _object(obj: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = obj.get(key)
    if not isinstance(value, dict):
        raise SummaryError(f"{where}.{key}: expected an object, got {value!r}")
    return value


def _numbers(value: Any, where: str) -> list[float]:
    if not isinstance(value, list) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    ):
        raise SummaryError(f"{where}: expected a list of numbers")
    return [float(v) for v in value]


def check_family(summary: Any, where: str) -> dict[str, Any]:
    """One family's loop summary, if every section the page draws has the fields it needs."""
    if not isinstance(summary, dict):
        raise SummaryError(f"{where}: expected a JSON object")
    phases = _object(summary, "phases_s", where)
    for name in phases:
        _number(phases, name, f"{where}.phases_s")
    if "baseline" in summary:
        _number(_object(summary, "baseline", where), "stream_excess_pct", f"{where}.baseline")
    if "evolution" in summary:
        evolution = _object(summary, "evolution", where)
        generations = evolution.get("generations")
        if not isinstance(generations, list):
            raise SummaryError(f"{where}.evolution.generations: expected a list")
        for i, gen in enumerate(generations):
            if not isinstance(gen, dict):
                raise SummaryError(f"{where}.evolution.generations[{i}]: expected an object")
            for key in ("generation", "best_excess_pct", "mean_excess_pct", "evaluations"):
                _number(gen, key, f"{where}.evolution.generations[{i}]")
        if evolution.get("best_parameters"):
            _numbers(evolution["best_parameters"], f"{where}.evolution.best_parameters")
    if "ab_test" in summary:
        ab = _object(summary, "ab_test", where)
        at = f"{where}.ab_test"
        for key in ("baseline_mean_excess_pct", "candidate_mean_excess_pct", "p_value", "alpha",
                    "effect_size", "hedges_g", "samples_used_per_arm"):
            _number(ab, key, at)
        if not isinstance(ab.get("decision"), str):
            raise SummaryError(f"{at}.decision: expected a string")
        if len(_numbers(ab.get("hedges_g_ci"), f"{at}.hedges_g_ci")) != 2:
            raise SummaryError(f"{at}.hedges_g_ci: expected [low, high]")
        observations = _object(ab, "observations", at)
        base = _numbers(observations.get("baseline"), f"{at}.observations.baseline")
        cand = _numbers(observations.get("candidate"), f"{at}.observations.candidate")
        if len(base) != len(cand) or not base:
            raise SummaryError(f"{at}.observations: expected two non-empty lists of equal length "
                               f"(got {len(base)} and {len(cand)})")
    for section in ("trigger", "resources", "strategy", "canary", "outcome", "evaluations"):
        if section in summary:
            _object(summary, section, where)
    return summary


def check(summary: Any, where: str = "summary") -> dict[str, Any]:
    """The loop's summary (every family, the scoreboard) if the page can draw it."""
    if not isinstance(summary, dict):
        raise SummaryError(f"{where}: expected a JSON object")
    if not isinstance(summary.get("ok"), bool):
        raise SummaryError(f"{where}.ok: expected true or false, got {summary.get('ok')!r}")
    if not isinstance(summary.get("reason"), str):
        raise SummaryError(f"{where}.reason: expected a string")
    families = _object(summary, "families", where)
    for name, family in families.items():
        check_family(family, f"{where}.families.{name}")
    if "scoreboard" in summary:
        rows = _object(summary, "scoreboard", where).get("rows")
        if not isinstance(rows, list) or not rows:
            raise SummaryError(f"{where}.scoreboard.rows: expected a non-empty list")
        for i, row in enumerate(rows):
            at = f"{where}.scoreboard.rows[{i}]"
            if not isinstance(row, dict) or not isinstance(row.get("set"), str):
                raise SummaryError(f"{at}.set: expected a string")
            for key in ("first_fit", "best_fit"):
                _number(row, key, at)
            if row.get("evolved") is not None:
                _number(row, "evolved", at)
            _number(_object(row, "published", at), "funsearch", f"{at}.published")
    return summary


def load(path: Path) -> tuple[dict[str, Any], str]:
    """(the loop summary, where in the file it was): the file's top level, or its `closed_loop`."""
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise SummaryError(f"{path}: {err.strerror or err}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SummaryError(f"{path}: not JSON ({err})") from None
    if isinstance(data, dict) and "closed_loop" in data:
        return check(data["closed_loop"], "closed_loop"), "closed_loop"
    if isinstance(data, dict) and "families" not in data and "ok" not in data:
        raise SummaryError(f"{path}: neither a closed-loop summary (ok, reason, families) "
                           f"nor a file with a closed_loop object")
    return check(data), ""
