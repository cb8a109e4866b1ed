"""GA: improves Rastrigin, respects bounds, keeps integer genes integral, ask/tell == run."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from chimera.optim import ga
from chimera.optim.objectives import rastrigin, sphere
from chimera.optim.space import Space

GENERATIONS = 60


@pytest.mark.parametrize("crossover", ga.CROSSOVERS)
def test_ga_improves_rastrigin(crossover):
    config = ga.GAConfig(Space(dim=10, lower=-5.12, upper=5.12), pop_size=128, crossover=crossover)
    state, history = ga.run(jax.random.key(0), config, rastrigin, GENERATIONS)
    best = np.asarray(history.best)
    assert np.all(np.diff(best) <= 0), "best-so-far must never get worse"
    assert best[-1] < 0.5 * best[0]
    assert float(state.best_f) == pytest.approx(float(rastrigin(state.best_x)), rel=1e-5)
    assert int(history.evaluations[-1]) == 128 * GENERATIONS
    assert np.all(np.isfinite(np.asarray(history.diversity)))
    # Per generation: its own best (offspring can be worse than their parents),
    # whose running minimum is the best-so-far, never above the mean.
    generation_best = np.asarray(history.generation_best)
    np.testing.assert_array_equal(np.minimum.accumulate(generation_best), best)
    assert np.any(np.diff(generation_best) > 0)
    assert np.all(generation_best <= np.asarray(history.mean))


def test_self_adaptive_mutation_shrinks_steps_on_sphere():
    config = ga.GAConfig(Space(dim=5), pop_size=64, self_adaptive=True, mutation_sigma=0.2)
    state, history = ga.run(jax.random.key(1), config, sphere, GENERATIONS)
    assert float(history.best[-1]) < 1e-2
    assert float(jnp.median(state.sigma)) < 0.2 * 10.0


@pytest.mark.parametrize("mode", ["clip", "reflect"])
def test_bounds_are_respected(mode):
    space = Space(dim=4, lower=(0.0, -1.0, 2.0, -3.0), upper=(1.0, 1.0, 2.5, 3.0), bound_mode=mode)
    config = ga.GAConfig(space, pop_size=32, mutation_rate=1.0, mutation_sigma=2.0, blend_alpha=2.0)
    state = ga.init(jax.random.key(2), config)
    lower, upper = space.bounds()
    for i in range(5):
        population, state = ga.ask(jax.random.key(10 + i), state, config)
        assert bool(jnp.all((population >= lower) & (population <= upper)))
        state = ga.tell(state, population, sphere(population), config)


def test_integer_genes_stay_integral():
    space = Space(dim=3, lower=-10.0, upper=10.0, integer=(True, False, True))
    config = ga.GAConfig(space, pop_size=32, mutation_rate=1.0)
    state, _ = ga.run(jax.random.key(3), config, sphere, 10)
    population = np.asarray(state.population)
    np.testing.assert_array_equal(population[:, [0, 2]], np.round(population[:, [0, 2]]))
    assert not np.all(population[:, 1] == np.round(population[:, 1]))
    assert float(state.best_f) <= 1.0


def test_ask_tell_loop_matches_scan_run():
    config = ga.GAConfig(Space(dim=6), pop_size=16)
    key = jax.random.key(4)
    final, _ = ga.run(key, config, sphere, 5)
    init_key, loop_key = jax.random.split(key)
    state = ga.init(init_key, config)
    for step_key in jax.random.split(loop_key, 5):
        population, state = ga.ask(step_key, state, config)
        state = ga.tell(state, population, sphere(population), config)
    np.testing.assert_allclose(np.asarray(state.population), np.asarray(final.population), rtol=1e-6)
    assert int(state.evaluations) == 5 * 16


def test_elitism_keeps_the_best_and_nan_fitness_ranks_worst():
    config = ga.GAConfig(Space(dim=2), pop_size=8, elite=1)
    state = ga.init(jax.random.key(5), config)
    population, state = ga.ask(jax.random.key(6), state, config)
    state = ga.tell(state, population, sphere(population), config)
    best_before = float(state.best_f)
    population, state = ga.ask(jax.random.key(7), state, config)
    state = ga.tell(state, population, jnp.full((8,), jnp.nan), config)
    assert float(jnp.min(state.fitness)) == pytest.approx(best_before)
    assert float(state.best_f) == pytest.approx(best_before)


def test_bad_config_and_shapes_are_named():
    with pytest.raises(ValueError, match="pop_size"):
        ga.GAConfig(Space(dim=2), pop_size=1)
    with pytest.raises(ValueError, match="crossover"):
        ga.GAConfig(Space(dim=2), crossover="two_point")
    with pytest.raises(ValueError, match="lower/upper"):
        Space(dim=2, lower=1.0, upper=0.0)
    config = ga.GAConfig(Space(dim=2), pop_size=4)
    state = ga.init(jax.random.key(0), config)
    with pytest.raises(ValueError, match="population/fitness"):
        ga.tell(state, jnp.zeros((3, 2)), jnp.zeros(3), config)


@pytest.mark.parametrize("rate", [0.01, 0.05, 0.5])
def test_mutation_deviates_are_bernoulli_masked_normals(rate):
    # 0.01 and 0.05 take the sparse (geometric-gap) draw, 0.5 the dense one.
    assert (rate <= ga.SPARSE_MUTATION_MAX_RATE) == (rate < 0.1)
    n, d = 400, 100
    draw = jax.jit(ga.mutation_deviates, static_argnums=(1, 2, 3))  # one compile, not one per op
    deviates = np.asarray(draw(jax.random.key(11), (n, d), rate, jnp.float32))
    mutated = deviates != 0.0
    count, expected = int(mutated.sum()), n * d * rate
    assert abs(count - expected) < 5 * np.sqrt(expected * (1 - rate))
    values = deviates[mutated]
    assert abs(values.mean()) < 5 / np.sqrt(count) and abs(values.std() - 1.0) < 0.1
    # Every column and every row block is hit alike (no positional bias).
    per_column = mutated.sum(axis=0)
    assert np.all(np.abs(per_column - n * rate) < 6 * np.sqrt(n * rate * (1 - rate)) + 1)
    halves = mutated[: n // 2].sum(), mutated[n // 2 :].sum()
    assert abs(halves[0] - halves[1]) < 6 * np.sqrt(expected)


def test_mutation_deviates_edges_and_sparse_capacity():
    assert not np.any(np.asarray(ga.mutation_deviates(jax.random.key(0), (8, 4), 0.0, jnp.float32)))
    assert np.all(np.asarray(ga.mutation_deviates(jax.random.key(0), (8, 4), 1.0, jnp.float32)) != 0.0)
    capacity = ga.sparse_capacity(1024 * 100, 0.01)
    assert 1024 * 1.1 < capacity < 1024 * 1.5  # mean 1024, sd 32: a ~7 sd margin
    assert ga.sparse_capacity(10, 0.01) == 10  # never more than the genes
    with pytest.raises(ValueError, match="rate"):
        ga.sparse_gaussian(jax.random.key(0), (4, 4), 1.0, jnp.float32)


def test_packed_uniforms_resolution_and_independence():
    draw = jax.jit(ga.packed_uniforms, static_argnums=(1, 2, 3))
    u16 = np.asarray(draw(jax.random.key(12), (300, 101), jnp.float32, 16))
    assert u16.shape == (300, 101) and np.all((u16 > 0) & (u16 < 1))
    assert abs(u16.mean() - 0.5) < 0.01
    # The two halves of one word (columns 2w and 2w + 1) are uncorrelated.
    assert abs(np.corrcoef(u16[:, 0:100:2].ravel(), u16[:, 1:101:2].ravel())[0, 1]) < 0.02
    coins = np.asarray(draw(jax.random.key(13), (300, 70), jnp.float32, 1))
    assert set(np.unique(coins)) == {0.25, 0.75}
    assert abs((coins < 0.5).mean() - 0.5) < 0.01


@pytest.mark.parametrize("impl", ["threefry2x32", "rbg"])
def test_a_fixed_seed_reproduces_the_run_with_any_prng(impl):
    config = ga.GAConfig(Space(dim=6), pop_size=16)
    runs = [ga.run(jax.random.key(7, impl=impl), config, sphere, 4)[0] for _ in range(2)]
    np.testing.assert_array_equal(np.asarray(runs[0].population), np.asarray(runs[1].population))
    other = ga.run(jax.random.key(8, impl=impl), config, sphere, 4)[0]
    assert not np.array_equal(np.asarray(runs[0].population), np.asarray(other.population))
