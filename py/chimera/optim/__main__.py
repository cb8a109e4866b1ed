"""Command line: run one strategy on a test function, printing progress.

    python -m chimera.optim --strategy cmaes-ipop --function rosenbrock --dim 10 \
        --generations 600 --progress-every 50

Bad arguments exit with status 2 and one message (argparse).
"""

from __future__ import annotations

import argparse
import sys

import jax

from chimera.optim import loop
from chimera.optim.objectives import TEST_FUNCTIONS
from chimera.optim.portfolio import DEFAULT_ARMS
from chimera.optim.progress import Progress, ProgressReporter
from chimera.optim.space import Space


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m chimera.optim", description="Run one optimiser on a test function.")
    p.add_argument("--strategy", choices=sorted(DEFAULT_ARMS), default="cmaes-ipop")
    p.add_argument("--function", choices=sorted(TEST_FUNCTIONS), default="sphere")
    p.add_argument("--dim", type=_positive, default=10)
    p.add_argument("--generations", type=_positive, default=200)
    p.add_argument("--progress-every", type=_positive, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    return p


def print_progress(record: Progress) -> None:
    print(
        f"generation {record.generation:>6}  best {record.best:.6g}  mean {record.mean:.6g}  "
        f"evaluations {record.evaluations}  evaluations/s {record.evaluations_per_s:.0f}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    spec = TEST_FUNCTIONS[args.function]
    space = Space(dim=args.dim, lower=spec.lower, upper=spec.upper, dtype=args.dtype)
    strategy, config = DEFAULT_ARMS[args.strategy](space)
    reporter = ProgressReporter(f"{args.strategy}/{args.function}", sink=print_progress)
    state, history = loop.run(
        strategy, jax.random.key(args.seed), config, spec.fn, args.generations, reporter, args.progress_every
    )
    print(f"best {float(state.best_f):.6g} after {int(state.evaluations)} evaluations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
