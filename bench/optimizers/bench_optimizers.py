"""Optimizer benchmark: this engine's GA vs DEAP vs evosax SimpleGA; CMA-ES vs pycma.

    bazel run //bench/optimizers:bench_optimizers -- --out $PWD/bench/results/optimizers.json
    bazel run //bench/optimizers:bench_optimizers -- --quick   # a smoke run, same rows

All rows come from one process, one run:

* **GA throughput**: Rastrigin d=100, population 1024, 50 bred generations.
  Every row does the same work apart from its operators: the same objective
  (`chimera.optim.objectives.rastrigin`, float32, one batched call per
  generation; DEAP's `toolbox.map` is that call), the same population, the
  same evaluations (the initial population plus 50 bred generations; the
  engine counts its initial evaluation as a generation, so it runs 51), clip
  to the bounds. Rows come in two kinds, and each ratio says which
  (`same_work`):
  - **same operators** (`same_work: true`): the engine configured as DEAP's
    `eaSimple` (selTournament(3), cxBlend(0.5) p=0.9, mutGaussian sigma 10 %
    of the range, indpb=1/d; no elitism) vs DEAP with exactly those;
  - **each library's defaults** (`same_work: false`): the engine's benchmark
    configuration (the above with 2 elites) vs evosax's `SimpleGA` as it comes
    (truncation to the best half, no crossover, every gene mutated with
    sigma 1.0), and the closest the engine gets to evosax (no crossover, every
    gene mutated with sigma 1.0, no elites; selection stays a tournament, so
    still `same_work: false`). evosax's operators cannot be set to the engine's.
  Generations/s are bred generations over the medians of >= 3 timed repeats of
  the compiled program; compile time is measured apart
  (`jit(...).lower().compile()`). The defaults rows again at population 65,536
  (JAX only: DEAP would take hours), and at 1024 with Rastrigin through
  `jnp.cos` (the objective's cost before `objectives.cos_2pi`).
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


SPACE_GA = Space(dim=DIM_GA, lower=-RASTRIGIN_BOUND, upper=RASTRIGIN_BOUND, dtype="float32")
#: evosax SimpleGA's mutation step (its default std_schedule: constant 1.0), absolute.
EVOSAX_STD = 1.0
#: DEAP mutGaussian's sigma in the same-operator rows: 10 % of the range, as the engine's default.
DEAP_SIGMA = 0.1 * 2 * RASTRIGIN_BOUND

#: The engine's configurations, by row kind (see the module docstring).
ENGINE_CONFIGS = {
    # selTournament(3) + cxBlend(0.5) p=0.9 + mutGaussian(indpb=1/d), no elitism: eaSimple's.
    "same operators as deap.eaSimple": dict(crossover_rate=0.9, elite=0),
    "defaults": dict(crossover_rate=0.9, elite=2),
    # No crossover, every gene mutated with evosax's absolute sigma, no elites.
    "closest to evosax.SimpleGA": dict(crossover_rate=0.0, elite=0, mutation_rate=1.0,
                                       mutation_sigma=EVOSAX_STD / (2 * RASTRIGIN_BOUND)),
}


def ga_config(pop: int, operators: str = "defaults") -> ga.GAConfig:
    return ga.GAConfig(SPACE_GA, pop_size=pop, tournament_size=3, crossover="blend", **ENGINE_CONFIGS[operators])


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


def engine_ga(pop: int, generations: int, prng_impl: str, objective=rastrigin, operators: str = "defaults") -> Compiled:
    config = ga_config(pop, operators)

    def run(key):
        # The engine's first generation evaluates the random initial population:
        # 1 + `generations` bred, the evaluations of every other row.
        state, history = ga.run(key, config, objective, generations + 1)
        return history.best[-1]

    return _compile(f"chimera.optim.ga [{operators}]", run, prng_impl)


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

    return _compile("evosax.SimpleGA [defaults]", run, prng_impl)


def bench_jax_rows(pop: int, generations: int, repeats: int, prng_impl: str, objective=rastrigin,
                   engine_operators: tuple[str, ...] = ("defaults", "closest to evosax.SimpleGA")) -> list[dict]:
    """The engine (in each of `engine_operators`) and evosax, compiled first, then
    timed in alternation (repeat i of each back to back) so a load change on a
    shared machine hits all alike. All draw from keys of `prng_impl`."""
    compiled = [engine_ga(pop, generations, prng_impl, objective, operators) for operators in engine_operators]
    compiled.append(evosax_ga(pop, generations, prng_impl, objective))
    best = {c.name: float(c.program(jax.random.key(0, impl=prng_impl))) for c in compiled}  # warm-up
    times: dict[str, list[float]] = {c.name: [] for c in compiled}
    for i in range(repeats):
        for c in compiled:
            times[c.name].append(timed(lambda: c.program(jax.random.key(i + 1, impl=prng_impl))))
    return [_row(c.name, pop, generations, times[c.name], c.compile_s, best[c.name]) for c in compiled]


def bench_deap(pop: int, generations: int, repeats: int) -> dict:
    """eaSimple with the engine's same-operator configuration; individuals are
    scored by the engine's own float32 objective, one batched call per
    generation through `toolbox.map` (DEAP's hook for evaluating elsewhere)."""
    from deap import algorithms, base, creator, tools

    if not hasattr(creator, "FitnessMin"):
        creator.create("FitnessMin", base.Fitness, weights=(-1.0,))
        creator.create("Individual", list, fitness=creator.FitnessMin)
    toolbox = base.Toolbox()
    toolbox.register("attr", random.uniform, -RASTRIGIN_BOUND, RASTRIGIN_BOUND)
    toolbox.register("individual", tools.initRepeat, creator.Individual, toolbox.attr, DIM_GA)
    toolbox.register("population", tools.initRepeat, list, toolbox.individual)

    objective = jax.jit(rastrigin)

    def evaluate_all(evaluate, individuals):
        individuals = list(individuals)
        if not individuals:
            return []
        fitness = np.asarray(objective(jnp.asarray(np.array(individuals, dtype=np.float32))))
        return [(float(f),) for f in fitness]

    def clip_to_bounds(operator):
        def clipped(*args, **kwargs):
            children = operator(*args, **kwargs)
            for child in children:
                child[:] = np.clip(child, -RASTRIGIN_BOUND, RASTRIGIN_BOUND).tolist()
            return children
        return clipped

    toolbox.register("evaluate", lambda ind: None)  # never called: evaluate_all is the map
    toolbox.register("map", evaluate_all)
    toolbox.register("mate", tools.cxBlend, alpha=0.5)
    toolbox.register("mutate", tools.mutGaussian, mu=0.0, sigma=DEAP_SIGMA, indpb=1.0 / DIM_GA)
    toolbox.register("select", tools.selTournament, tournsize=3)
    toolbox.decorate("mate", clip_to_bounds)
    toolbox.decorate("mutate", clip_to_bounds)
    evaluate_all(None, [[0.0] * DIM_GA])  # compile the objective before timing
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
    return _row("deap.eaSimple [same operators]", pop, generations, times, 0.0, best)


def _row(name: str, pop: int, generations: int, times: list[float], compile_s: float, best: float) -> dict:
    median = statistics.median(times)
    return {
        "optimizer": name,
        "population": pop,
        "generations": generations,
        "evaluations": pop * (generations + 1),
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

    same_ops = "same operators as deap.eaSimple"
    ga_rows = (bench_jax_rows(1024, generations, repeats, args.prng_impl,
                              engine_operators=(same_ops, "defaults", "closest to evosax.SimpleGA"))
               + [bench_deap(1024, generations, repeats)])
    big_rows = bench_jax_rows(65536, big_generations, repeats, args.prng_impl)
    cos_rows = bench_jax_rows(1024, generations, repeats, args.prng_impl, rastrigin_jnp_cos, engine_operators=("defaults",))
    rate = {row["optimizer"]: row["generations_per_s"] for row in ga_rows}
    big_rate = {row["optimizer"]: row["generations_per_s"] for row in big_rows}
    cos_rate = {row["optimizer"]: row["generations_per_s"] for row in cos_rows}
    engine, evosax = "chimera.optim.ga [{}]", "evosax.SimpleGA [defaults]"
    not_selection = "selection: tournament(3) vs evosax's truncation to the best half"
    defaults_differ = [not_selection, "crossover: BLX-0.5 p=0.9 vs none",
                       "mutation: 1 % of genes, sigma 1.024 vs every gene, sigma 1.0", "elites: 2 vs none"]
    ga_ratios = {
        "engine_over_deap_same_operators": ratio(rate, engine.format(same_ops), "deap.eaSimple [same operators]",
                                                 same_work=True),
        "engine_over_evosax_defaults": ratio(rate, engine.format("defaults"), evosax, same_work=False,
                                             differs=defaults_differ),
        "engine_over_evosax_closest_operators": ratio(rate, engine.format("closest to evosax.SimpleGA"), evosax,
                                                      same_work=False, differs=[not_selection]),
        "engine_over_evosax_defaults_at_65536": ratio(big_rate, engine.format("defaults"), evosax, same_work=False,
                                                      differs=defaults_differ),
        "engine_over_evosax_closest_operators_at_65536": ratio(
            big_rate, engine.format("closest to evosax.SimpleGA"), evosax, same_work=False, differs=[not_selection]),
        "engine_over_evosax_defaults_jnp_cos": ratio(cos_rate, engine.format("defaults"), evosax, same_work=False,
                                                     differs=defaults_differ),
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
            # Same function, start distribution, sigma0, IPOP restarts and budget; the
            # engine's own CMA-ES vs pycma's (and float32 vs float64 for the float32 rows).
            cma_ratios[f"{row['function']}_{dtype}_evals_over_pycma"] = {
                "value": row["median_evaluations"] / reference["median_evaluations"],
                "same_work": dtype == "float64",
                **({} if dtype == "float64" else {"differs": ["dtype: float32 vs pycma's float64"]}),
            }

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
        "targets": {"engine_over_deap_same_operators": ">= 30", "engine_over_evosax_defaults": ">= 1.0",
                    "cmaes_evals_over_pycma": "<= 1.2", "nan_runs": "0"},
    }
    print_tables(result)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


def ratio(rates: dict[str, float], numerator: str, denominator: str, same_work: bool,
          differs: list[str] | None = None) -> dict:
    """A ratio of two rows' generations/s, saying whether they did the same work."""
    return {"value": rates[numerator] / rates[denominator], "numerator": numerator, "denominator": denominator,
            "same_work": same_work, **({"differs": differs} if differs else {})}


def print_tables(result: dict) -> None:
    print(f"backend={result['jax_backend']} devices={result['jax_devices']} prng={result['ga_prng_impl']} "
          f"load={result['load_average_before']}")
    print(f"{'GA (Rastrigin d=100)':<50}{'pop':>7}{'gen/s':>10}{'compile s':>11}{'best':>10}")
    for table in ("ga_rastrigin_d100", "ga_rastrigin_d100_pop65536", "ga_rastrigin_d100_jnp_cos"):
        if table.endswith("jnp_cos"):
            print("  objective through jnp.cos (as before cos_2pi):")
        for row in result[table]:
            print(f"{row['optimizer']:<50}{row['population']:>7}{row['generations_per_s']:>10.1f}"
                  f"{row['compile_s']:>11.2f}{row['final_best']:>10.1f}")
    for key, value in result["ga_ratios"].items():
        print(f"  {key}: {value['value']:.2f}x (same_work: {str(value['same_work']).lower()})")
    print(f"{'CMA-ES to 1e-8 (d=10)':<28}{'function':<12}{'reached':>9}{'median evals':>14}{'NaN':>5}")
    for row in result["cmaes_to_1e-8_d10"]:
        median = row["median_evaluations"]
        print(f"{row['optimizer']:<28}{row['function']:<12}{row['reached']:>4}/{row['runs']:<4}"
              f"{median if median is not None else '-':>14}{row['nan_runs']:>5}")
    for key, value in result["cmaes_ratios"].items():
        print(f"  {key}: {value['value']:.3f} (same_work: {str(value['same_work']).lower()})")


if __name__ == "__main__":
    sys.exit(main())
