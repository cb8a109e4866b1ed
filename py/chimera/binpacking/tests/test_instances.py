"""Instances: the kernel's rules, the encoding, the generators and their seeds."""

import numpy as np
import pytest

from chimera.binpacking import instances
from chimera.binpacking.instances import SEED_RANGES, Instance, InvalidInstance, generate


def test_encoding_round_trips_and_l1_bound():
    inst = Instance(150, (20, 100, 150, 31))
    assert Instance.decode(inst.encode()) == inst
    assert inst.l1_bound == 3
    assert Instance(10, (10, 10)).l1_bound == 2


@pytest.mark.parametrize(
    ("capacity", "items", "field"),
    [
        (10, (), "items"),
        (10, (3, 11), "items[1]"),
        (10, (0,), "items[0]"),
        (10, (-4,), "items[0]"),
        (10, (2.5,), "items[0]"),
        (0, (1,), "capacity"),
        (2000, (1,), "capacity"),
        (10, (1,) * (instances.MAX_ITEMS + 1), "items"),
    ],
)
def test_bad_instances_name_the_field(capacity, items, field):
    with pytest.raises(InvalidInstance) as caught:
        Instance(capacity, items)
    assert caught.value.field == field


def test_decode_rejects_non_whole_and_non_finite_sizes():
    from chimera.wasm.guest import encode_f64s

    for values, field in (([1.0, 10.0, 2.5], "items[0]"), ([1.0, 10.0, 4.0, float("nan")], "items[1]"),
                          ([2.0, 10.0, 1.0], "input"), ([1.0, 10.0, 11.0], "items[0]")):
        with pytest.raises(InvalidInstance) as caught:
            Instance.decode(encode_f64s(values))
        assert caught.value.field == field


def test_generators_follow_their_families_and_are_deterministic():
    weibull = generate("weibull", "training", 0)
    assert weibull.capacity == 100 and len(weibull.items) == 5000
    assert min(weibull.items) >= 1 and max(weibull.items) <= 100
    # Weibull(shape 3, scale 45): mean 45 * Gamma(4/3) = 40.2.
    assert 39.0 < np.mean(weibull.items) < 41.5
    uniform = generate("or", "training", 0)
    assert uniform.capacity == 150 and len(uniform.items) == 500
    assert min(uniform.items) >= 20 and max(uniform.items) <= 100
    assert generate("weibull", "training", 0) == weibull
    assert generate("weibull", "training", 1) != weibull
    assert generate("weibull", "generalisation", 3, items=10_000).items[:5] != weibull.items[:5]
    assert len(generate("weibull", "generalisation", 3, items=10_000).items) == 10_000


def test_seed_ranges_are_disjoint_and_bounded():
    spans = sorted((r.first, r.first + r.size) for r in SEED_RANGES.values())
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))
    with pytest.raises(InvalidInstance):
        SEED_RANGES["training"].seed(SEED_RANGES["training"].size)
    with pytest.raises(InvalidInstance) as caught:
        generate("gaussian", "training", 0)
    assert caught.value.field == "family"


def test_published_sets_load_with_their_checksums():
    from chimera.binpacking import published

    or3 = published.load("or3")
    assert len(or3.instances) == 20 and {len(i.items) for i in or3.instances} == {500}
    weibull = published.load("weibull_5k")
    assert len(weibull.instances) == 5 and weibull.instances[0].capacity == 100
    # The README's mean L1 bounds.
    assert np.mean([i.l1_bound for i in or3.instances]) == pytest.approx(201.2)
    assert np.mean([i.l1_bound for i in weibull.instances]) == pytest.approx(1987.8)
    assert published.figures()["sets"]["weibull_5k"]["best_fit"] == 3.98
