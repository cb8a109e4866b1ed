"""The loop's scoreboard: the published table, measured through layer 4 after the loop decided.

This is the one module of the loop that reads the published sets (OR3 and
Weibull 5k, held out): it runs after every choice is made, and only measures.
Each set gets First Fit, Best Fit and every evolved candidate of the run, all
packed by layer 4's kernel (EvaluateBatch), beside the published figures
(FunSearch's labelled as published, not measured here). The generalisation
check packs fresh generated instances (new seeds, 5,000 and 10,000 items)
with Best Fit and each candidate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import loop_phases as phases
from chimera.binpacking import published
from chimera.binpacking.genome import BEST_FIT, FIRST_FIT
from chimera.binpacking.instances import FAMILIES

__all__ = ["generalisation", "measure"]

#: The published sets in table order, by the generator family that imitates each.
SET_FAMILY = {spec.published_set: name for name, spec in FAMILIES.items()}


def measure(
    stubs: phases.Stubs, module_name: str, candidates: Mapping[str, Sequence[float]], agent_id: str
) -> dict[str, Any]:
    """Excess over L1 (%) on each published set: First Fit, Best Fit, each candidate, published figures.

    ``candidates`` maps a generator family to the genome the loop evolved for
    it; a set's ``evolved`` is the genome evolved for its own family (None when
    the run evolved none for it).
    """
    figures = published.figures()
    rows = []
    for set_name in published.SETS:
        loaded = published.load(set_name)
        family = SET_FAMILY[set_name]
        genomes = [("first_fit", FIRST_FIT), ("best_fit", BEST_FIT)]
        if family in candidates:
            genomes.append(("evolved", tuple(candidates[family])))
        messages = [phases.genome_message(f"{agent_id}-{name}", agent_id, g) for name, g in genomes]
        scored = phases.evaluate(stubs, module_name, messages, loaded.instances, f"{agent_id}.{set_name}")
        measured = dict(zip((name for name, _ in genomes), scored.excess(), strict=True))
        rows.append(
            {
                "set": set_name,
                "sha256": loaded.sha256,
                "instances": len(loaded.instances),
                "first_fit": measured["first_fit"],
                "best_fit": measured["best_fit"],
                "evolved": measured.get("evolved"),
                "evolved_for": family if family in candidates else None,
                "evolved_fuel_per_item": scored.mean_fuel_per_item(2) if family in candidates else None,
                "best_fit_fuel_per_item": scored.mean_fuel_per_item(1),
                "published": figures["sets"][set_name],
                "failed_pairs": scored.failed,
            }
        )
    return {
        "measured_by": "layer 4 EvaluateBatch (the WASM kernel)",
        "published_source": figures["source"],
        "rows": rows,
    }


def generalisation(
    stubs: phases.Stubs, module_name: str, candidates: Mapping[str, Sequence[float]], agent_id: str,
    count: int, sizes: Sequence[int] = (5_000, 10_000),
) -> list[dict[str, Any]]:
    """Best Fit vs each candidate on fresh instances of its family (generalisation seeds)."""
    rows = []
    for family, genome in candidates.items():
        for items in sizes:
            fresh = phases.instances(family, "generalisation", count, items=items)
            messages = [
                phases.genome_message(f"{agent_id}-best-fit", agent_id, BEST_FIT),
                phases.genome_message(f"{agent_id}-evolved", agent_id, genome),
            ]
            scored = phases.evaluate(stubs, module_name, messages, fresh, f"{agent_id}.gen.{family}.{items}")
            best_fit, evolved = scored.excess()
            rows.append(
                {"family": family, "items": items, "instances": count, "best_fit": best_fit,
                 "evolved": evolved, "beats_best_fit": evolved < best_fit}
            )
    return rows
