"""Optimizer benchmark: this engine's GA vs DEAP vs evosax SimpleGA; CMA-ES vs pycma.

    bazel run //bench/optimizers:bench_optimizers -- --out $PWD/bench/results/optimizers.json
    bazel run //bench/optimizers:bench_optimizers -- --quick   # a smoke run, same rows

All rows come from one process, one run:

* **GA throughput**: Rastrigin d=100, population 1024, 50 generations.
  `chimera.optim.ga` (tournament k=3, BLX-0.5 crossover p=0.9, Gaussian
  mutation p=1/d, 2 elites, clip bounds; one `lax.scan`) vs DEAP 1.4
  (`toolbox` + `algorithms.eaSimple` with selTournament(3), cxBlend(0.5),
  mutGaussian(indpb=1/d), the same rates; pure Python) vs evosax's
  `SimpleGA` (truncation selection, every gene mutated) under `lax.scan`.
  Generations/s are medians of >= 3 timed repeats of the compiled program;
  compile time is measured apart (`jit(...).lower().compile()`). The same at
  population 65,536 for the two JAX rows (DEAP would take hours), and the
  two JAX rows again with Rastrigin through `jnp.cos` (the objective's cost
  before `objectives.cos_2pi`), so the GA's own gain shows apart.
* **CMA-ES**: evaluations until the best fitness is < 1e-8 on sphere,
  ellipsoid (condition 1e6) and Rosenbrock at d=10, x0 ~ U[-3, 3]^10,
  sigma0 = 2, IPOP restarts, the same evaluation budget for both; this
  engine in float32 and float64 (seeds vmapped in one program) vs pycma
  (`cma.fmin2`, float64, IPOP). A hit is counted only within the budget;
  runs whose final state holds a NaN are counted per dtype.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from chimera.optim import cmaes, ga
from chimera.optim.objectives import ellipsoid, rastrigin, rosenbrock, sphere
from chimera.optim.space import Space

DIM_GA = 100
RASTRIGIN_BOUND = 5.12
TARGET = 1e-8
CMA_DIM = 10
CMA_BUDGETS = {"sphere": 4000, "ellipsoid": 15000, "rosenbrock": 20000}
CMA_FUNCTIONS = {"sphere": sphere, "ellipsoid": ellipsoid, "rosenbrock": rosenbrock}
PRNG_IMPLS = ("threefry2x32", "rbg", "unsafe_rbg")


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def ga_config(pop: int) -> ga.GAConfig:
    space = Space(dim=DIM_GA, lower=-RASTRIGIN_BOUND, upper=RASTRIGIN_BOUND, dtype="float32")
    return ga.GAConfig(space, pop_size=pop, tournament_size=3, crossover="blend", crossover_rate=0.9, elite=2)


class Compiled(NamedTuple):
    name: str
    program: Callable[[jax.Array], Any]  # key -> final best fitness
    compile_s: float


def _compile(name: str, run: Callable[[jax.Array], Any], prng_impl: str) -> Compiled:
    start = time.perf_counter()
    program = jax.jit(run).lower(jax.random.key(0, impl=prng_impl)).compile()
    return Compiled(name, program, time.perf_counter() - start)


def rastrigin_jnp_cos(x: jax.Array) -> jax.Array:
    """Rastrigin through jnp.cos(2 pi x), as the objectives module had it
    before cos_2pi: XLA CPU's cosine is scalar, so this row shows the GA
    ratios with the objective's cost as it was."""
    return 10.0 * x.shape[-1] + jnp.sum(x * x - 10.0 * jnp.cos(2.0 * jnp.pi * x), axis=-1)


def engine_ga(pop: int, generations: int, prng_impl: str, objective=rastrigin) -> Compiled:
    config = ga_config(pop)

    def run(key):
        state, history = ga.run(key, config, objective, generations)
        return history.best[-1]

    return _compile("chimera.optim.ga", run, prng_impl)


def evosax_ga(pop: int, generations: int, prng_impl: str, objective=rastrigin) -> Compiled:
    from evosax.algorithms import SimpleGA

    strategy = SimpleGA(population_size=pop, solution=jnp.zeros(DIM_GA, jnp.float32))
    params = strategy.default_params

    def run(key):
        init_key, pop_key, loop_key = jax.random.split(key, 3)
        population = jax.random.uniform(pop_key, (pop, DIM_GA), jnp.float32, -RASTRIGIN_BOUND, RASTRIGIN_BOUND)
        state = strategy.init(init_key, population, objective(population), params)

        def step(state, key):
            ask_key, tell_key = jax.random.split(key)
            population, state = strategy.ask(ask_key, state, params)
            population = jnp.clip(population, -RASTRIGIN_BOUND, RASTRIGIN_BOUND)
            fitness = objective(population)
            state, _ = strategy.tell(tell_key, population, fitness, state, params)
            return state, jnp.min(fitness)

        state, best = jax.lax.scan(step, state, jax.random.split(loop_key, generations))
        return jnp.min(best)

    return _compile("evosax.SimpleGA", run, prng_impl)


def bench_jax_rows(pop: int, generations: int, repeats: int, prng_impl: str, objective=rastrigin) -> list[dict]:
    """Both JAX GAs, compiled first, then timed in alternation (repeat i of
    each back to back) so a load change on a shared machine hits both alike.
    Both draw from keys of `prng_impl`."""
    compiled = [engine_ga(pop, generations, prng_impl, objective), evosax_ga(pop, generations, prng_impl, objective)]
    best = {c.name: float(c.program(jax.random.key(0, impl=prng_impl))) for c in compiled}  # warm-up
    times: dict[str, list[float]] = {c.name: [] for c in compiled}
    for i in range(repeats):
        for c in compiled:
            times[c.name].append(timed(lambda: c.program(jax.random.key(i + 1, impl=prng_impl))))
    return [_row(c.name, pop, generations, times[c.name], c.compile_s, best[c.name]) for c in compiled]


def bench_deap(pop: int, generations: int, repeats: int) -> dict:
    from deap import algorithms, base, creator, tools

    if not hasattr(creator, "FitnessMin"):
        creator.create("FitnessMin", base.Fitness, weights=(-1.0,))
        creator.create("Individual", list, fitness=creator.FitnessMin)
    toolbox = base.Toolbox()
    toolbox.register("attr", random.uniform, -RASTRIGIN_BOUND, RASTRIGIN_BOUND)
    toolbox.register("individual", tools.initRepeat, creator.Individual, toolbox.attr, DIM_GA)
    toolbox.register("population", tools.initRepeat, list, toolbox.individual)

    def evaluate(ind):
        x = np.asarray(ind)
        return (float(10 * DIM_GA + np.sum(x * x - 10 * np.cos(2 * np.pi * x))),)

    toolbox.register("evaluate", evaluate)
    toolbox.register("mate", tools.cxBlend, alpha=0.5)
    toolbox.register("mutate", tools.mutGaussian, mu=0.0, sigma=0.1 * 2 * RASTRIGIN_BOUND, indpb=1.0 / DIM_GA)
    toolbox.register("select", tools.selTournament, tournsize=3)
    times, best = [], None
    for i in range(repeats):
        random.seed(i)
        population = toolbox.population(n=pop)
        start = time.perf_counter()
        population, _ = algorithms.eaSimple(
            population, toolbox, cxpb=0.9, mutpb=1.0, ngen=generations, verbose=False
        )
        times.append(time.perf_counter() - start)
        best = min(ind.fitness.values[0] for ind in population)
    return _row("deap.eaSimple", pop, generations, times, 0.0, best)


def _row(name: str, pop: int, generations: int, times: list[float], compile_s: float, best: float) -> dict:
    median = statistics.median(times)
    return {
        "optimizer": name,
        "population": pop,
        "generations": generations,
        "repeats": len(times),
        "run_s": times,
        "median_run_s": median,
        "generations_per_s": generations / median,
        "compile_s": compile_s,
        "final_best": best,
    }


def engine_cma(name: str, dtype: str, seeds: int) -> dict:
    objective = CMA_FUNCTIONS[name]
    budget = CMA_BUDGETS[name]
    config = cmaes.CMAConfig(
        Space(dim=CMA_DIM, lower=-1e3, upper=1e3, dtype=dtype), sigma0=2.0, init_region=(-3.0, 3.0), restarts="ipop"
    )
    generations = budget // config.base_popsize
    program = jax.jit(jax.vmap(lambda key: cmaes.run(key, config, objective, generations)))
    keys = jax.random.split(jax.random.key(1), seeds)
    start = time.perf_counter()
    state, history = jax.block_until_ready(program(keys))
    elapsed = time.perf_counter() - start
    floats = [leaf for leaf in jax.tree_util.tree_leaves(state) if jnp.issubdtype(leaf.dtype, jnp.floating)]
    nan_runs = int(np.sum(np.any(np.stack([np.isnan(np.asarray(l)).reshape(seeds, -1).any(1) for l in floats]), 0)))
    assert state.best_f.dtype == jnp.dtype(dtype)
    best = np.asarray(history.best)
    evals = np.asarray(history.evaluations)
    hits = []
    for i in range(seeds):
        reached = np.nonzero((best[i] < TARGET) & (evals[i] <= budget))[0]
        hits.append(int(evals[i][reached[0]]) if reached.size else None)
    return _cma_row(f"chimera.optim.cmaes[{dtype}]", name, budget, hits, nan_runs, elapsed,
                    restarts=np.asarray(state.restarts).tolist())


def pycma(name: str, seeds: int) -> dict:
    import cma

    budget = CMA_BUDGETS[name]
    hits, nan_runs = [], 0
    start = time.perf_counter()
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        count = {"n": 0, "hit": None}

        def f(x):
            count["n"] += 1
            value = _numpy_objective(name, np.asarray(x))
            if value < TARGET and count["hit"] is None:
                count["hit"] = count["n"]
            return value

        _, es = cma.fmin2(
            f, rng.uniform(-3, 3, CMA_DIM), 2.0,
            {"ftarget": TARGET, "maxfevals": budget, "verbose": -9, "seed": seed + 1},
            restarts=9, incpopsize=2,
        )
        nan_runs += int(np.isnan(es.mean).any())
        hits.append(count["hit"] if count["hit"] is not None and count["hit"] <= budget else None)
    return _cma_row("pycma[float64]", name, budget, hits, nan_runs, time.perf_counter() - start)


def _numpy_objective(name: str, x: np.ndarray) -> float:
    if name == "sphere":
        return float(np.sum(x * x))
    if name == "ellipsoid":
        return float(np.sum(10.0 ** (6.0 * np.arange(x.size) / (x.size - 1)) * x * x))
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def _cma_row(optimizer: str, name: str, budget: int, hits: list, nan_runs: int, elapsed: float, **extra) -> dict:
    reached = [h for h in hits if h is not None]
    return {
        "optimizer": optimizer,
        "function": name,
        "dim": CMA_DIM,
        "budget": budget,
        "runs": len(hits),
        "reached": len(reached),
        "evaluations_to_target": hits,
        "median_evaluations": statistics.median(reached) if reached else None,
        "nan_runs": nan_runs,
        "wall_s": elapsed,
        **extra,
    }


def machine() -> dict:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )
    return {"cpu_model": model, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": sys.version.split()[0]}


def versions() -> dict:
    return {name: importlib.metadata.version(name) for name in ("jax", "jaxlib", "numpy", "evosax", "deap", "cma")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="results JSON path")
    parser.add_argument("--quick", action="store_true", help="fewer repeats/seeds/generations: a smoke run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cma-seeds", type=int, default=10)
    parser.add_argument("--big-generations", type=int, default=50, help="generations at population 65,536")
    parser.add_argument(
        "--prng-impl", choices=PRNG_IMPLS, default=PRNG_IMPLS[0],
        help="JAX PRNG of the GA rows' keys (threefry2x32: JAX's default, fastest on XLA CPU here)",
    )
    args = parser.parse_args(argv)
    if args.repeats < 3:
        parser.error("--repeats: medians need at least 3 repeats")
    if args.cma_seeds < 1:
        parser.error("--cma-seeds: must be at least 1")
    repeats = args.repeats
    if args.big_generations < 1:
        parser.error("--big-generations: must be at least 1")
    generations, big_generations, seeds = (50, args.big_generations, args.cma_seeds) if not args.quick else (10, 5, 2)
    load_before = os.getloadavg()

    ga_rows = bench_jax_rows(1024, generations, repeats, args.prng_impl) + [bench_deap(1024, generations, repeats)]
    big_rows = bench_jax_rows(65536, big_generations, repeats, args.prng_impl)
    cos_rows = bench_jax_rows(1024, generations, repeats, args.prng_impl, rastrigin_jnp_cos)
    cos_rate = {row["optimizer"]: row["generations_per_s"] for row in cos_rows}
    rate = {row["optimizer"]: row["generations_per_s"] for row in ga_rows}
    big_rate = {row["optimizer"]: row["generations_per_s"] for row in big_rows}
    ga_ratios = {
        "engine_over_deap": rate["chimera.optim.ga"] / rate["deap.eaSimple"],
        "engine_over_evosax": rate["chimera.optim.ga"] / rate["evosax.SimpleGA"],
        "engine_over_deap_at_65536": big_rate["chimera.optim.ga"] / rate["deap.eaSimple"],
        "engine_over_evosax_at_65536": big_rate["chimera.optim.ga"] / big_rate["evosax.SimpleGA"],
        "engine_over_deap_jnp_cos": cos_rate["chimera.optim.ga"] / rate["deap.eaSimple"],
        "engine_over_evosax_jnp_cos": cos_rate["chimera.optim.ga"] / cos_rate["evosax.SimpleGA"],
    }

    references = {name: pycma(name, seeds) for name in CMA_FUNCTIONS}
    engine_rows = [engine_cma(name, "float32", seeds) for name in CMA_FUNCTIONS]
    # x64 only now: everything above (and evosax) runs in JAX's default float32 mode.
    jax.config.update("jax_enable_x64", True)
    engine_rows += [engine_cma(name, "float64", seeds) for name in CMA_FUNCTIONS]
    cma_rows, cma_ratios = list(references.values()) + engine_rows, {}
    for row in engine_rows:
        reference = references[row["function"]]
        if row["median_evaluations"] and reference["median_evaluations"]:
            dtype = row["optimizer"].split("[")[1].rstrip("]")
            cma_ratios[f"{row['function']}_{dtype}_evals_over_pycma"] = (
                row["median_evaluations"] / reference["median_evaluations"]
            )

    result = {
        "benchmark": "optimizers",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine(),
        "versions": versions(),
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in jax.devices()],
        "jax_device_kinds": sorted({d.device_kind for d in jax.devices()}),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "ga_prng_impl": args.prng_impl,
        "ga_rastrigin_d100": ga_rows,
        "ga_rastrigin_d100_pop65536": big_rows,
        "ga_rastrigin_d100_jnp_cos": cos_rows,
        "ga_ratios": ga_ratios,
        "cmaes_to_1e-8_d10": cma_rows,
        "cmaes_ratios": cma_ratios,
        "targets": {"engine_over_deap": ">= 30", "engine_over_evosax": ">= 1.0",
                    "cmaes_evals_over_pycma": "<= 1.2", "nan_runs": "0"},
    }
    print_tables(result)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


def print_tables(result: dict) -> None:
    print(f"backend={result['jax_backend']} devices={result['jax_devices']} prng={result['ga_prng_impl']} "
          f"load={result['load_average_before']}")
    print(f"{'GA (Rastrigin d=100)':<22}{'pop':>7}{'gen/s':>10}{'compile s':>11}{'best':>10}")
    for table in ("ga_rastrigin_d100", "ga_rastrigin_d100_pop65536", "ga_rastrigin_d100_jnp_cos"):
        if table.endswith("jnp_cos"):
            print("  objective through jnp.cos (as before cos_2pi):")
        for row in result[table]:
            print(f"{row['optimizer']:<22}{row['population']:>7}{row['generations_per_s']:>10.1f}"
                  f"{row['compile_s']:>11.2f}{row['final_best']:>10.1f}")
    for key, value in result["ga_ratios"].items():
        print(f"  {key}: {value:.2f}x")
    print(f"{'CMA-ES to 1e-8 (d=10)':<28}{'function':<12}{'reached':>9}{'median evals':>14}{'NaN':>5}")
    for row in result["cmaes_to_1e-8_d10"]:
        median = row["median_evaluations"]
        print(f"{row['optimizer']:<28}{row['function']:<12}{row['reached']:>4}/{row['runs']:<4}"
              f"{median if median is not None else '-':>14}{row['nan_runs']:>5}")
    for key, value in result["cmaes_ratios"].items():
        print(f"  {key}: {value:.3f}")


if __name__ == "__main__":
    sys.exit(main())
