"""The resources core through WASM: the shared vectors (rust/src/vectors.rs) and bad input."""

from __future__ import annotations

import math
import re

import pytest

from chimera.resources import artifacts
from chimera.resources.core import (
    Amounts,
    CoreError,
    Mode,
    Outcome,
    Rates,
    ResourcesCore,
    SolverDevice,
    SolverNode,
)
from chimera.wasm.artifacts import Artifact

VECTORS = Artifact("layers/layer8_resources/rust/src/vectors.rs", "CHIMERA_RESOURCES_VECTORS")
UNITS = {"G": 1 << 30, "M": 1 << 20}


@pytest.fixture(scope="module")
def core() -> ResourcesCore:
    return ResourcesCore.load()


def cases(kind: str) -> list[list[str]]:
    text = artifacts.locate(VECTORS).read_text(encoding="utf-8")
    body = text.split("BEGIN VECTORS\n", 1)[1].split("END VECTORS", 1)[0]
    return [line.split(" | ") for line in body.splitlines() if line.startswith(kind)]


def size(text: str) -> float:
    if text[-1] in UNITS:
        return float(text[:-1]) * UNITS[text[-1]]
    return float(text)


def amounts(text: str) -> Amounts:
    cpu, mem, gpus, gpu_mem, disk = (size(t) for t in text.split(","))
    return Amounts(cpu, int(mem), int(gpus), int(gpu_mem), int(disk))


def node(text: str) -> SolverNode:
    fields = dict(f.split("=", 1) for f in text.split(" "))
    cap, free = {}, {}
    for key, name in (("cpu", "cpu_cores"), ("mem", "memory_bytes"), ("disk", "storage_bytes")):
        c, f = fields[key].split(":")
        cast = float if key == "cpu" else int
        cap[name], free[name] = cast(size(c)), cast(size(f))
    devices = tuple(
        SolverDevice(int(size(d.rstrip("*"))), not d.endswith("*"))
        for d in fields["dev"].split("+")
        if d
    )
    return SolverNode(Amounts(**cap), Amounts(**free), devices)


def describe(o: Outcome) -> str:
    if o.kind == "placed":
        return f"placed:{o.node}:{'+'.join(map(str, o.devices))}"
    return o.kind if o.kind == "skipped" else f"{o.kind}:{o.dimension}"


def test_vectors_file_has_cases() -> None:
    assert len(cases("cost")) >= 4 and len(cases("solve")) >= 10


@pytest.mark.parametrize("case", cases("cost"), ids=lambda c: c[1])
def test_cost_vectors(core: ResourcesCore, case: list[str]) -> None:
    _, _, rates, amount, minutes, shares, per_hour, total = case
    rates_in = Rates(*(float(r) for r in rates.split(",")))
    cost = core.price(rates_in, [(amounts(amount), int(minutes))])[0]
    want = [float(s) for s in shares.split(",")]
    assert cost.shares == pytest.approx(want, rel=1e-12, abs=1e-15)
    assert cost.per_hour == pytest.approx(float(per_hour), rel=1e-12, abs=1e-15)
    assert cost.total == pytest.approx(float(total), rel=1e-12, abs=1e-15)
    assert cost.duration_minutes == int(minutes)


@pytest.mark.parametrize("case", cases("solve"), ids=lambda c: c[1])
def test_solve_vectors(core: ResourcesCore, case: list[str]) -> None:
    _, _, mode, nodes, requests, outcomes = case
    got = core.solve(
        [node(n) for n in nodes.split(" ; ")],
        [amounts(r) for r in requests.split(" ; ")],
        Mode.STOP_AT_FIRST_MISS if mode == "stop" else Mode.PLACE_ALL_THAT_FIT,
    )
    assert [describe(o) for o in got] == outcomes.split(" ; ")


def test_cost_is_rate_times_units_times_hours(core: ResourcesCore) -> None:
    rates = Rates(0.031, 0.0043, 1.7, 0.002, 0.00009)
    a = Amounts(3.5, 6 << 30, 2, 24 << 30, 50 << 30)
    cost = core.price(rates, [(a, 45)])[0]
    gib = float(1 << 30)
    expected = [0.031 * 3.5, 0.0043 * 6, 1.7 * 2, 0.002 * 24, 0.00009 * 50]
    assert list(cost.shares) == pytest.approx(expected, rel=1e-12)
    assert cost.per_hour == pytest.approx(math.fsum(expected), rel=1e-12)
    assert cost.total == pytest.approx(math.fsum(expected) * 45 / 60, rel=1e-12)
    assert a.memory_bytes / gib == 6


def test_refusals_carry_the_amounts(core: ResourcesCore) -> None:
    host = SolverNode(Amounts(4.0, 8 << 30), Amounts(1.0, 8 << 30))
    [o] = core.solve([host], [Amounts(cpu_cores=2.0)], Mode.PLACE_ALL_THAT_FIT)
    assert (o.kind, o.dimension, o.requested, o.available) == ("no_room", "cpu_cores", 2.0, 1.0)
    [o] = core.solve([host], [Amounts(cpu_cores=5.0)], Mode.PLACE_ALL_THAT_FIT)
    assert (o.kind, o.requested, o.available) == ("too_large", 5.0, 4.0)


def test_bad_values_are_named(core: ResourcesCore) -> None:
    with pytest.raises(CoreError) as err:
        core.price(Rates(usd_per_gpu_hour=-1.0), [])
    assert err.value.details == ("rates.usd_per_gpu_hour",)
    with pytest.raises(CoreError) as err:
        core.price(Rates(), [(Amounts(cpu_cores=math.nan), 1)])
    assert err.value.details == ("items[0].cpu_cores",)
    bad_node = SolverNode(Amounts(1.0), Amounts(2.0))
    with pytest.raises(CoreError) as err:
        core.solve([bad_node], [], Mode.PLACE_ALL_THAT_FIT)
    assert re.search(r"nodes\[0\]\.free\.cpu_cores", err.value.message)
