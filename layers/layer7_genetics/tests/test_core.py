"""The genetics core through WASM on the vectors its Rust tests also check."""

from __future__ import annotations

import json
import math

import pytest

from chimera.genetics import artifacts
from chimera.genetics.core import (
    STATUS_BAD_BOUNDS,
    STATUS_BAD_GENOME,
    STATUS_BAD_KPI,
    STATUS_EMPTY_POPULATION,
    CoreError,
    GeneticsCore,
    KpiInputs,
)

VECTORS = json.loads(artifacts.locate(artifacts.CORE_VECTORS).read_text())


@pytest.fixture(scope="module")
def core() -> GeneticsCore:
    return GeneticsCore.load()


@pytest.mark.parametrize("case", VECTORS["fitness"], ids=lambda c: str(c["inputs"]))
def test_fitness_vectors(core: GeneticsCore, case: dict) -> None:
    inputs = KpiInputs(*case["inputs"])
    if case["fitness"] is None:
        with pytest.raises(CoreError) as err:
            core.fitness([inputs])
        assert err.value.status == STATUS_BAD_KPI
        assert err.value.details == ("0", case["field"])
    else:
        (got,) = core.fitness([inputs])
        assert got == pytest.approx(case["fitness"], rel=1e-12, abs=1e-12)
        a, latency, throughput, errors = case["inputs"]
        formula = 0.4 * a + 0.3 / (1 + latency / 100) + 0.2 * min(throughput / 1000, 1) + 0.1 * (1 - errors)
        assert got == pytest.approx(formula, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("case", VECTORS["populations"], ids=lambda c: c["name"])
def test_population_vectors(core: GeneticsCore, case: dict) -> None:
    bounds = [tuple(b) for b in case["bounds"]]
    if case["error"] is None:
        d = core.check_population(bounds, case["population"])
        want = case["diversity"]
        assert d.mean_pairwise_distance == pytest.approx(want[0], rel=1e-12, abs=1e-15)
        assert d.mean_dimension_stddev == pytest.approx(want[1], rel=1e-12, abs=1e-15)
    else:
        with pytest.raises(CoreError) as err:
            core.check_population(bounds, case["population"])
        assert err.value.details == tuple(case["error"])
        expected = {0: STATUS_EMPTY_POPULATION, 1: STATUS_BAD_BOUNDS, 3: STATUS_BAD_GENOME}
        assert err.value.status == expected[len(case["error"])]


def test_batches_keep_their_order(core: GeneticsCore) -> None:
    values = core.fitness([KpiInputs(1, 0, 1000, 0), KpiInputs(0, 100, 0, 1), KpiInputs(0.5, 0, 0, 0)])
    assert values == pytest.approx([1.0, 0.15, 0.2 + 0.3 + 0.1])
    assert core.fitness([]) == []
    assert math.isfinite(core.check_population([(0, 1)] * 3, [[0.5] * 3] * 50).mean_dimension_stddev)
