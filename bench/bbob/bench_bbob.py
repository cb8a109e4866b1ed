"""chimera.optim's CMA-ES on COCO's BBOB suite, beside pycma and evosax.

Every solver runs on the real suite through `cocoex` (24 noiseless functions),
in the same process and run: the engine's CMA-ES (float64 and float32 states,
IPOP/BIPOP restarts), pycma 4.5 without restarts and with BIPOP, evosax's
CMA_ES (no restarts), and layer 6's portfolio (the UCB1 bandit over the
engine's strategies, one per BBOB function class and dimension, trained on
instances that are never measured and then committed to its best arm on the
measured ones) against each of its arms run alone on the same problems.

Every evaluation is counted here, by the wrapper every solver calls (cocoex
does not count NaN evaluations); a run stops at its budget (d x the budget
multiplier) or when it reaches f_opt + 1e-8. Targets are f_opt + 10^k,
k = 2, 1.8, ..., -8 (COCO's 51); a function is solved on an instance when the
last target is reached. Output: a table of functions solved per dimension,
the results JSON (machine, versions, load) and an ECDF plot (fraction of
(problem, target) pairs reached against evaluations / d).

  bazel run //bench/bbob:bench_bbob -- --out $PWD/bench/results/bbob.json
  bazel run //bench/bbob:bench_bbob -- --quick --baseline $PWD/bench/bbob/quick_baseline.json

--quick (CI): d = 5, instance 1, budget 2,000 d, the engine's BIPOP in both
dtypes; exits 1 when either solves fewer functions than the baseline figure.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import itertools
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import jax

jax.config.update("jax_enable_x64", True)  # float64 fitness reaches every tell, also for float32 states

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from chimera.optim import bandit, cmaes, host, portfolio  # noqa: E402

from bench.bbob.bbob import (  # noqa: E402
    CLASSES, DIMENSIONS, FINAL_PRECISION, FUNCTIONS, INIT_HIGH, INIT_LOW, MAX_BUDGET_MULTIPLIER, MAX_INSTANCE, SIGMA0,
    TARGET_EXPONENTS, Outcome, Problem, Recorder, Stop, engine_config, load_problem, seed_of, space,
)


def engine_cmaes(restarts: str, dtype: str):
    def solve(problem: Problem, recorder: Recorder, seed: int) -> None:
        config = engine_config(problem, dtype, restarts)
        host.minimize(
            cmaes.STRATEGY, jax.random.key(seed), config, recorder.rows, recorder.budget,
            target=problem.f_opt + FINAL_PRECISION,
        )

    return solve


def pycma(bipop: bool):
    def solve(problem: Problem, recorder: Recorder, seed: int) -> None:
        import cma

        x0 = np.random.default_rng(seed).uniform(INIT_LOW, INIT_HIGH, problem.dim)
        options = {"seed": seed, "verbose": -9, "maxfevals": recorder.budget,
                   "ftarget": problem.f_opt + FINAL_PRECISION}
        if bipop:
            cma.fmin2(recorder.one, x0, SIGMA0, options, restarts=9, bipop=True)
        else:
            cma.fmin2(recorder.one, x0, SIGMA0, options)

    return solve


def evosax_cmaes(problem: Problem, recorder: Recorder, seed: int) -> None:
    from evosax.algorithms import CMA_ES

    popsize = 4 + int(3 * math.log(problem.dim))
    strategy = CMA_ES(population_size=popsize, solution=jnp.zeros(problem.dim, jnp.float64))
    params = strategy.default_params.replace(std_init=SIGMA0)
    key = jax.random.key(seed)
    key, init_key, mean_key = jax.random.split(key, 3)
    mean = jax.random.uniform(mean_key, (problem.dim,), jnp.float64, INIT_LOW, INIT_HIGH)
    state = strategy.init(init_key, mean, params)
    ask, tell = jax.jit(strategy.ask), jax.jit(strategy.tell)
    while True:  # until the recorder stops it
        key, ask_key, tell_key = jax.random.split(key, 3)
        population, state = ask(ask_key, state, params)
        fitness = recorder.rows(np.asarray(population))
        state, _ = tell(tell_key, population, jnp.asarray(fitness), state, params)


def arm_solver(arm: str):
    def solve(problem: Problem, recorder: Recorder, seed: int) -> None:
        strategy, config = portfolio.DEFAULT_ARMS[arm](space(problem, "float64"))
        host.minimize(strategy, jax.random.key(seed), config, recorder.rows, recorder.budget,
                      target=problem.f_opt + FINAL_PRECISION)

    return solve


def function_class(function: int) -> str:
    return next(name for name, functions in CLASSES.items() if function in functions)


class HeldOutPortfolio:
    """Layer 6's portfolio as a meta-solver: one UCB1 bandit over the arms per
    BBOB function class and dimension (layer 6 keeps one per problem class),
    its statistics carried from episode to episode.

    Training (`train`, on instances never measured): each episode runs the arm
    UCB1 picks (`bandit.choose`) for the whole budget, and the reference arm
    (the first of `portfolio.DEFAULT_ARMS`, CMA-ES IPOP) on the same problem.
    The reward is the pair's difference of ECDF areas (the benchmark's own
    measure; it needs f_opt, known on training instances), mapped to [0, 1]
    as 0.5 + (area - reference area) / 2, so the reference arm itself scores
    0.5. Paired, because a class's functions differ in ECDF area far more
    than its arms do: rewarded with the area alone, each arm's mean reflected
    the functions UCB1 happened to try it on (held out: 0.989 of the best
    single arm; one bandit per function instead, 0.974, from two runs per arm).
    Measurement (`__call__`, on held-out instances): the bandit commits the
    budget to the arm of highest mean reward (`bandit.exploit`) and learns
    nothing from the outcome. The measured run uses its arm's own seed (common
    random numbers), so it differs from that arm's row only by the choice."""

    def __init__(self, train_instances: tuple[int, ...]):
        self.train_instances = train_instances
        self.reference = next(iter(portfolio.DEFAULT_ARMS))
        self.memory: dict[tuple[str, int], bandit.BanditState] = {}  # (class, dim) -> its bandit
        self.training: list[dict] = []
        self.choices: list[dict] = []

    def train(self, functions: tuple[int, ...], dim: int, budget: int) -> None:
        """One episode per (training instance, function)."""
        for instance, function in itertools.product(self.train_instances, functions):
            problem = load_problem(function, dim, instance)
            problem_class = (function_class(function), dim)
            state = self.memory.get(problem_class) or bandit.new_bandit(tuple(portfolio.DEFAULT_ARMS))
            arm, reason = bandit.choose(state)
            area = arm_ecdf_area(arm, problem, budget)
            reference_area = area if arm == self.reference else arm_ecdf_area(self.reference, problem, budget)
            reward = 0.5 + (area - reference_area) / 2
            self.memory[problem_class] = bandit.update(state, arm, reward)
            self.training.append({"function": function, "instance": instance, "dim": dim, "class": problem_class[0],
                                  "arm": arm, "reason": reason, "ecdf_area": round(area, 4),
                                  "reference_ecdf_area": round(reference_area, 4), "reward": round(reward, 4)})
            print(f"portfolio training f{function} i{instance} d={dim}: {arm} area {area:.3f} "
                  f"({self.reference}: {reference_area:.3f})", flush=True)

    def __call__(self, problem: Problem, recorder: Recorder, seed: int) -> None:
        problem_class = (function_class(problem.function), problem.dim)
        if problem_class not in self.memory:
            raise RuntimeError(f"portfolio: no training episodes for {problem_class}; train before measuring")
        arm, reason = bandit.exploit(self.memory[problem_class])
        self.choices.append({"function": problem.function, "instance": problem.instance, "dim": problem.dim,
                             "class": problem_class[0], "arm": arm, "reason": reason})
        arm_solver(arm)(problem, recorder, seed_of(problem, f"arm:{arm}"))

    def report(self) -> dict[str, Any]:
        return {
            "train_instances": self.train_instances,
            "reward": f"0.5 + (the training run's ECDF area - {self.reference}'s on the same problem) / 2",
            "measurement": "the arm of highest mean training reward per (class, dimension); no learning on measured instances",
            "bandits": {f"{cls}/d{dim}": dict(zip(state.arms, zip(state.pulls, (round(r, 4) for r in state.reward_sums))))
                        for (cls, dim), state in self.memory.items()},
            "choices": self.choices, "training": self.training,
        }


ANCHORS = ("pycma", "pycma-bipop", "evosax-cmaes")
ENGINE = ("engine-bipop-float64", "engine-bipop-float32", "engine-ipop-float64", "engine-none-float64")
ARMS = tuple(f"arm:{name}" for name in portfolio.DEFAULT_ARMS)
SOLVERS = ENGINE + ANCHORS + ("portfolio",) + ARMS
QUICK_SOLVERS = ("engine-bipop-float64", "engine-bipop-float32")
# The portfolio's training instances (COCO ids), apart from the measured
# default 1-5: 10 instances x 5 functions = 50 episodes per class bandit.
TRAIN_INSTANCES = tuple(range(6, 16))


def make_solver(name: str, train_instances: tuple[int, ...] = TRAIN_INSTANCES):
    if name.startswith("engine-"):
        _, restarts, dtype = name.split("-")
        return engine_cmaes(restarts, dtype)
    if name.startswith("arm:"):
        return arm_solver(name[4:])
    return {"pycma": pycma(False), "pycma-bipop": pycma(True), "evosax-cmaes": evosax_cmaes,
            "portfolio": HeldOutPortfolio(train_instances)}[name]


def run_one(solver: Callable, problem: Problem, budget: int, name: str) -> Outcome:
    recorder = Recorder(problem, budget)
    start = time.perf_counter()
    try:
        solver(problem, recorder, seed_of(problem, name))
    except Stop:
        pass
    return Outcome(recorder.evaluations, recorder.improvements, recorder.nonfinite, time.perf_counter() - start)


def first_hits(outcome: Outcome) -> list[Optional[int]]:
    """Evaluations at which each target f_opt + 10^k was first reached (None: never)."""
    hits = []
    for exponent in TARGET_EXPONENTS:
        reached = [e for e, error in outcome.improvements if error <= 10.0**exponent]
        hits.append(reached[0] if reached else None)
    return hits


def ecdf(records: list[dict], grid: np.ndarray) -> np.ndarray:
    """Fraction of (problem, target) pairs reached within grid[i] evaluations / d."""
    pairs = [(h / r["dim"]) for r in records for h in r["first_hits"] if h is not None]
    total = sum(len(r["first_hits"]) for r in records)
    reached = np.sort(np.asarray(pairs)) if pairs else np.zeros(0)
    return np.searchsorted(reached, grid, side="right") / max(total, 1)


def ecdf_area(records: list[dict], max_multiplier: float) -> float:
    """Mean ECDF value over log-spaced budgets 1..max_multiplier (x d): 1 would
    be every target at the first evaluation."""
    grid = np.logspace(0, math.log10(max_multiplier), 200)
    return float(np.mean(ecdf(records, grid)))


def arm_ecdf_area(arm: str, problem: Problem, budget: int) -> float:
    """The ECDF area of one run of portfolio arm `arm` on `problem`, with the arm's own seed."""
    outcome = run_one(arm_solver(arm), problem, budget, f"arm:{arm}")
    return ecdf_area([{"dim": problem.dim, "first_hits": first_hits(outcome)}], budget / problem.dim)


def parse_ints(text: str, name: str) -> tuple[int, ...]:
    values: list[int] = []
    try:
        for part in text.split(","):
            low, _, high = part.partition("-")
            values.extend(range(int(low), int(high or low) + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name}: expected integers like 1,2 or 1-5, got {text!r}") from None
    return tuple(sorted(set(values)))


def validate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    bad = [d for d in args.dims if d not in DIMENSIONS]
    if bad:
        parser.error(f"--dims: BBOB has dimensions {DIMENSIONS}, not {bad}")
    if not args.functions or any(f not in FUNCTIONS for f in args.functions):
        parser.error("--functions: BBOB functions are 1-24")
    for name in ("instances", "instances_d20", "train_instances"):
        if not getattr(args, name) or any(i < 1 or i > MAX_INSTANCE for i in getattr(args, name)):
            parser.error(f"--{name.replace('_', '-')}: COCO instance ids are 1-{MAX_INSTANCE}")
    if not (1 <= args.budget <= MAX_BUDGET_MULTIPLIER) or (args.budget_d20 and not 1 <= args.budget_d20 <= MAX_BUDGET_MULTIPLIER):
        parser.error(f"--budget/--budget-d20: evaluations per dimension must be in [1, {MAX_BUDGET_MULTIPLIER}]")
    unknown = [s for s in args.solvers if s not in SOLVERS]
    if unknown:
        parser.error(f"--solvers: unknown {unknown}; known: {', '.join(SOLVERS)}")
    measured = set(args.instances) | (set(args.instances_d20) if any(d >= 20 for d in args.dims) else set())
    if "portfolio" in args.solvers and measured & set(args.train_instances):
        parser.error(f"--train-instances: {sorted(measured & set(args.train_instances))} are also measured; "
                     "the portfolio's training instances must be held apart")


def machine() -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cpu_model": model, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": sys.version.split()[0]}


def versions() -> dict[str, str]:
    return {name: importlib.metadata.version(name)
            for name in ("jax", "jaxlib", "numpy", "cma", "evosax", "coco-experiment", "matplotlib")}


def plot(records: list[dict], solvers: list[str], dims: list[int], max_multiplier: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.logspace(0, math.log10(max_multiplier), 200)
    fig, axes = plt.subplots(1, len(dims), figsize=(4.2 * len(dims), 3.8), squeeze=False, sharey=True)
    for ax, dim in zip(axes[0], dims):
        for solver in solvers:
            rows = [r for r in records if r["solver"] == solver and r["dim"] == dim]
            if rows:
                ax.step(grid, ecdf(rows, grid), where="post", label=solver)
        ax.set_xscale("log")
        ax.set_title(f"BBOB d={dim}, {len({r['function'] for r in records if r['dim'] == dim})} functions")
        ax.set_xlabel("evaluations / d")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("fraction of (problem, target) pairs")
    axes[0][-1].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summarise(records: list[dict], solvers: list[str], dims: list[int], budgets: dict[int, int]) -> dict:
    """Functions solved per solver and dimension (a function counts the share
    of its instances solved), NaN runs, ECDF areas, and the portfolio beside
    its best single arm per class."""
    table: dict[str, dict[str, Any]] = {}
    for solver in solvers:
        table[solver] = {}
        for dim in dims:
            rows = [r for r in records if r["solver"] == solver and r["dim"] == dim]
            if not rows:
                continue
            per_function: dict[int, list[bool]] = {}
            for r in rows:
                per_function.setdefault(r["function"], []).append(r["solved"])
            table[solver][str(dim)] = {
                "solved": round(sum(sum(v) / len(v) for v in per_function.values()), 2),
                "functions": len(per_function),
                "nan_runs": sum(1 for r in rows if r["nonfinite"] > 0),
                "ecdf_area": round(ecdf_area(rows, budgets[dim] / dim), 4),
            }
    comparison = {}
    arms = [s for s in solvers if s.startswith("arm:")]
    if "portfolio" in solvers and arms:
        # Over the measured problems only (training runs are not records), all
        # dimensions together on one grid; "all" is the aggregate.
        max_multiplier = max(budgets[d] / d for d in dims)
        for group, functions in {**CLASSES, "all": FUNCTIONS}.items():
            rows = [r for r in records if r["function"] in functions]
            if not any(r["solver"] == "portfolio" for r in rows):
                continue
            areas = {s: ecdf_area([r for r in rows if r["solver"] == s], max_multiplier) for s in ["portfolio", *arms]}
            best = max(arms, key=areas.get)
            comparison[group] = {
                "portfolio_ecdf_area": round(areas["portfolio"], 4), "best_arm": best,
                "best_arm_ecdf_area": round(areas[best], 4),
                "portfolio_over_best_arm": round(areas["portfolio"] / max(areas[best], 1e-12), 3),
                "portfolio_over_arm": {s: round(areas["portfolio"] / max(areas[s], 1e-12), 3) for s in arms},
            }
    return {"solved": table, "portfolio_vs_best_arm": comparison}


def print_table(summary: dict, dims: list[int]) -> None:
    print(f"{'solver':<28}" + "".join(f"{'d=' + str(d):>16}" for d in dims))
    for solver, by_dim in summary["solved"].items():
        cells = [f"{by_dim[str(d)]['solved']:>6}/{by_dim[str(d)]['functions']:<3}nan={by_dim[str(d)]['nan_runs']:<2}"
                 if str(d) in by_dim else f"{'-':>16}" for d in dims]
        print(f"{solver:<28}" + "".join(f"{c:>16}" for c in cells))
    for group, row in summary["portfolio_vs_best_arm"].items():
        print(f"portfolio on {group} (held-out instances): ECDF area {row['portfolio_ecdf_area']} vs best arm "
              f"{row['best_arm']} {row['best_arm_ecdf_area']} (ratio {row['portfolio_over_best_arm']})")


class OneLineParser(argparse.ArgumentParser):
    """Bad input: exit 2 with one message line (no usage block)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: Optional[list[str]] = None) -> int:
    parser = OneLineParser(prog="bench_bbob", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dims", type=lambda t: parse_ints(t, "--dims"), default=(2, 5, 10, 20))
    parser.add_argument("--functions", type=lambda t: parse_ints(t, "--functions"), default=FUNCTIONS)
    parser.add_argument("--instances", type=lambda t: parse_ints(t, "--instances"), default=(1, 2, 3, 4, 5),
                        help="instances at d < 20")
    parser.add_argument("--instances-d20", type=lambda t: parse_ints(t, "--instances-d20"), default=(1,),
                        help="instances at d >= 20 (the costly ones)")
    parser.add_argument("--budget", type=int, default=MAX_BUDGET_MULTIPLIER, help="evaluations per dimension")
    parser.add_argument("--budget-d20", type=int, default=1_000, help="evaluations per dimension at d >= 20")
    parser.add_argument("--train-instances", type=lambda t: parse_ints(t, "--train-instances"), default=TRAIN_INSTANCES,
                        help="instances the portfolio learns on (never measured)")
    parser.add_argument("--solvers", type=lambda t: tuple(t.split(",")), default=SOLVERS)
    parser.add_argument("--quick", action="store_true", help="the CI check (see the module docstring)")
    parser.add_argument("--baseline", type=Path, help="--quick: JSON of the functions each solver must solve")
    parser.add_argument("--out", type=Path, help="results JSON")
    parser.add_argument("--plot", type=Path, help="ECDF PNG (default: beside --out)")
    args = parser.parse_args(argv)
    if args.quick:
        args.dims, args.instances, args.budget, args.solvers = (5,), (1,), 2_000, QUICK_SOLVERS
    validate(args, parser)
    if args.quick and args.baseline is None:
        parser.error("--quick: --baseline is required (the committed figure it checks against)")
    baseline = None
    if args.baseline is not None:
        try:
            baseline = json.loads(args.baseline.read_text())
            floors = {s: int(baseline["solved"][s]) for s in args.solvers}
        except (OSError, ValueError, KeyError, TypeError) as e:
            parser.error(f"--baseline: {args.baseline} has no solved count for every solver: {e}")
    if args.out is not None and not args.out.parent.is_dir():
        parser.error(f"--out: directory {args.out.parent} does not exist")

    load_before = os.getloadavg()
    budgets = {d: (args.budget_d20 if d >= 20 else args.budget) * d for d in args.dims}
    solvers = {name: make_solver(name, args.train_instances) for name in args.solvers}
    records = []
    start = time.perf_counter()
    for dim in args.dims:
        instances = args.instances_d20 if dim >= 20 else args.instances
        if "portfolio" in solvers:
            solvers["portfolio"].train(args.functions, dim, budgets[dim])
        for function in args.functions:
            for instance in instances:
                problem = load_problem(function, dim, instance)
                for name, solver in solvers.items():
                    outcome = run_one(solver, problem, budgets[dim], name)
                    print(f"f{function} i{instance} d={dim} {name}: {'solved' if outcome.solved else 'unsolved'} "
                          f"after {outcome.evaluations} evaluations, {outcome.wall_s:.1f} s", flush=True)
                    records.append({
                        "solver": name, "function": function, "instance": instance, "dim": dim,
                        "budget": budgets[dim], "evaluations": outcome.evaluations, "solved": outcome.solved,
                        "best_error": outcome.improvements[-1][1] if outcome.improvements else None,
                        "nonfinite": outcome.nonfinite, "wall_s": round(outcome.wall_s, 3),
                        "first_hits": first_hits(outcome),
                    })
        print(f"d={dim} done after {time.perf_counter() - start:.0f} s", flush=True)
    summary = summarise(records, list(args.solvers), list(args.dims), budgets)
    print_table(summary, list(args.dims))
    result = {
        "benchmark": "bbob", "quick": args.quick,
        "settings": {"dims": args.dims, "functions": args.functions, "instances": args.instances,
                     "instances_d20": args.instances_d20,
                     "portfolio_train_instances": args.train_instances if "portfolio" in args.solvers else None,
                     "budget_per_dim": args.budget,
                     "budget_per_dim_d20": args.budget_d20, "final_precision": FINAL_PRECISION,
                     "target_exponents": TARGET_EXPONENTS, "init": [INIT_LOW, INIT_HIGH], "sigma0": SIGMA0},
        "same_work": True,
        "machine": machine(), "versions": versions(),
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "wall_s": round(time.perf_counter() - start, 1),
        **summary, "runs": records,
    }
    if "portfolio" in solvers:
        result["portfolio"] = solvers["portfolio"].report()
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        plot(records, list(args.solvers), list(args.dims), max(budgets[d] / d for d in args.dims),
             args.plot or args.out.with_suffix(".png"))
        print(f"wrote {args.out}")
    if baseline is not None:
        failed = []
        for solver in args.solvers:
            solved = sum(r["solved"] for r in records if r["solver"] == solver)
            print(f"{solver}: {solved} solved, baseline {floors[solver]}")
            if solved < floors[solver]:
                failed.append(solver)
        if failed:
            print(f"REGRESSION: {', '.join(failed)} solved fewer functions than {args.baseline}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
