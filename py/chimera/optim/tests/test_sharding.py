"""The sharded path on two forced CPU devices (set before JAX is imported)."""

import os

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"

import jax  # noqa: E402
import pytest  # noqa: E402
from jax.sharding import PartitionSpec  # noqa: E402

from chimera.optim import ga  # noqa: E402
from chimera.optim.objectives import rastrigin  # noqa: E402
from chimera.optim.sharding import population_mesh, row_sharding, shard_rows  # noqa: E402
from chimera.optim.space import Space  # noqa: E402


def test_rows_split_over_both_devices_and_uneven_sizes_replicate():
    assert jax.device_count() == 2
    mesh = population_mesh()
    population = shard_rows(jax.numpy.zeros((64, 3)), mesh)
    assert {s.data.shape for s in population.addressable_shards} == {(32, 3)}
    assert len({s.device for s in population.addressable_shards}) == 2
    assert row_sharding(63, mesh).spec == PartitionSpec(None)


def test_run_evaluates_populations_split_over_both_devices():
    seen = []

    def objective(population):
        jax.debug.inspect_array_sharding(population, callback=seen.append)
        return rastrigin(population)

    config = ga.GAConfig(Space(dim=8, lower=-5.12, upper=5.12), pop_size=64)
    state, history = ga.run(jax.random.key(0), config, objective, 30)
    assert seen, "the objective was traced"
    sharding = seen[0]
    assert len(sharding.device_set) == 2
    assert sharding.shard_shape((64, 8)) == (32, 8)
    assert float(history.best[-1]) < 0.7 * float(history.best[0])
    # Same value up to float32 rounding (the sharded program fuses differently).
    assert float(state.best_f) == pytest.approx(float(rastrigin(state.best_x[None])[0]), rel=1e-5)
