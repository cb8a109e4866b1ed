"""CMA-ES with pycma-style termination criteria and IPOP / BIPOP restarts.

Written here rather than taken from evosax: evosax 0.3.2's `CMA_ES` has no
termination criteria, so in float32 its fitness values tie, its step size
collapses to ~1e-37 and its state turns NaN. The update follows Hansen's
tutorial (2016: cumulative step-size adaptation, rank-one + rank-mu update
with the h_sigma stall, active CMA's negative weights) with pycma 4.5's
default constants (`_params`), and adds the criteria pycma stops on -- tolfun
(recent and current fitness range), tolx, condition number of C, no-effect
axis / coordinate (the step no longer changes the mean in this dtype), flat
fitness (more than 3 generations whose best equals the 75th percentile),
stagnation, sigma blow-up and any non-finite state -- each of which
triggers a restart instead of a NaN.
Restarts (IPOP: population doubles; BIPOP as pycma's `fmin2(bipop=True)`:
alternates doubled "large" runs and "small" runs with a random smaller
population and step, choosing the regime that has used fewer evaluations,
the first run booked to the small regime, and a small run stopped once it
has used half the large runs' evaluations) keep every shape static for `lax.scan`: the
population always has `max_popsize` rows and the rows past `state.popsize`
are inactive (they rank last, count no evaluations and may be left
unevaluated by an expensive objective: pass any value there).

Deviations from pycma 4.5, each for a reason:
- Box bounds: a sample outside the box is clipped (or reflected) for
  evaluation and ranked with pycma's BoundPenalty shape (`bound_penalty`), but
  its weight is recomputed each generation from the fitness IQR rather than
  adapted over generations (no state to carry; enough for BBOB's [-5, 5]).
  As in pycma, the penalty is off until the mean leaves the box in the
  current run (a flag, not pycma's per-coordinate weights: a per-coordinate
  switch measured worse on BBOB f5, whose optimum is a corner).
  pycma's default `fmin2` is unbounded.
- C is symmetrised and its eigenvalues floored at max / condition limit
  (1e14 in float64, 1e8 in float32: beyond it a float32 C is rounding noise)
  before the square root, where pycma only stops on `tolconditioncov`.
- Eigendecomposition every generation (pycma lazily, every ~1/(10 d (c1+cmu))
  generations to save time): one XLA op here, and it keeps the update exact.
- No mirrored sampling for tiny populations (pycma's `CMA_mirrors`): every
  population has the same static shape.
- The IPOP/BIPOP schedule runs inside `tell` with static shapes (pycma's
  `fmin2(restarts=..., bipop=True)` drives restarts outside the strategy),
  and every restart draws a new mean in the start region where pycma's
  `fmin2` with an array x0 restarts from that same x0 (COCO's experiments
  pass a callable x0 for exactly this).
- At most `max_doublings` (default 4) population doublings, where pycma
  allows 9: the asked population has the static shape base * 2^max_doublings.

Numerics: the update uses the sampled steps y = B D z themselves (never
(x - m)/sigma, which cancels in float32), and sigma's change per generation is
capped at e^1 like pycma's. Fitness values are ranked, compared and kept in
their own precision (`loop.make_tell`, `loop.fitness_dtype`), and the mean,
the samples and best_x live in that dtype too: float64 whenever the process
has jax_enable_x64, even for a float32 space. A float32 space then keeps only
the O(d^2) part -- C, its eigenbasis, the paths and the steps -- in float32.
Positions must not be float32 for 1e-8 targets: near x_opt ~ 4, float32's
grid is ~5e-7 wide, and on an ellipsoid of condition 1e6 (BBOB f2, f10) that
alone leaves ~1e-7 (measured: float32 positions stalled at 1.7e-7 on f10,
d = 5; float64 positions with the float32 C reach 1e-8).

Default dtype float32 (without x64 every array, the fitness included, is
float32): with the criteria above it reaches 1e-8 on the standard d=10
functions and never NaNs (see tests and bench/optimizers, bench/bbob).
float64 allows ill-conditioned problems up to condition 1e14 instead of 1e8.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Literal, NamedTuple, Optional

import jax
import jax.numpy as jnp

from chimera.optim import loop
from chimera.optim.space import Space

Restarts = Literal["none", "ipop", "bipop"]
RESTARTS = ("none", "ipop", "bipop")
# Order of the counters in CMAState.terminations.
TERMINATION_REASONS = (
    "tolfun",
    "tolx",
    "condition",
    "noeffectaxis",
    "noeffectcoord",
    "flatfitness",
    "stagnation",
    "tolupsigma",
    "nonfinite",
    "maxiter",  # a BIPOP small run spent its share of the budget (pycma's maxiter for small runs)
)
# pycma's tolflatfitness: a run stops after more than this many consecutive
# generations whose best equals the 75th-percentile fitness.
FLAT_GENERATIONS = 3


@dataclasses.dataclass(frozen=True)
class CMAConfig:
    """Static CMA-ES settings.

    Attributes:
      space: dimension, dtype and box (samples outside are repaired for
        evaluation and ranked with a penalty of the squared repair distance).
      sigma0: initial step size (None: a quarter of the mean width of the
        start region).
      popsize: lambda of the first run (None: 4 + floor(3 ln d)).
      restarts: "none", "ipop" or "bipop".
      max_doublings: the population grows to at most popsize * 2**max_doublings.
      init_region: (low, high) box the first and every restart mean are drawn
        from (None: the space's bounds).
      tolfun, tolx: pycma's absolute tolerances.
      tol_condition: largest condition number of C (None: 1e14 in float64,
        1e8 in float32).
      tolstagnation: generations without improving the run's best (None:
        pycma's 100 + 100 d^1.5 / lambda).
    """

    space: Space
    sigma0: Optional[float] = None
    popsize: Optional[int] = None
    restarts: Restarts = "ipop"
    max_doublings: int = 4
    init_region: Optional[tuple[float, float]] = None
    tolfun: float = 1e-11
    tolx: float = 1e-11
    tol_condition: Optional[float] = None
    tolstagnation: Optional[int] = None

    def __post_init__(self) -> None:
        if self.restarts not in RESTARTS:
            raise ValueError(f"restarts: must be one of {RESTARTS}, got {self.restarts!r}")
        if self.popsize is not None and self.popsize < 2:
            raise ValueError(f"popsize: must be at least 2, got {self.popsize}")
        if self.sigma0 is not None and not (self.sigma0 > 0 and math.isfinite(self.sigma0)):
            raise ValueError(f"sigma0: must be positive and finite, got {self.sigma0}")
        if not 0 <= self.max_doublings <= 12:
            raise ValueError(f"max_doublings: must be in [0, 12], got {self.max_doublings}")
        if self.init_region is not None and not self.init_region[0] < self.init_region[1]:
            raise ValueError("init_region: low must be below high")

    @property
    def base_popsize(self) -> int:
        return self.popsize if self.popsize is not None else 4 + int(3 * math.log(self.space.dim))

    @property
    def max_popsize(self) -> int:
        growth = 0 if self.restarts == "none" else self.max_doublings
        return self.base_popsize * 2**growth

    @property
    def condition_limit(self) -> float:
        if self.tol_condition is not None:
            return self.tol_condition
        return 1e14 if self.space.dtype == "float64" else 1e8

    @property
    def history_length(self) -> int:
        return 10 + math.ceil(30 * self.space.dim / self.base_popsize)

    @property
    def stagnation_limit(self) -> int:
        if self.tolstagnation is not None:
            return self.tolstagnation
        return int(100 + 100 * self.space.dim**1.5 / self.base_popsize)

    def region(self) -> tuple[jax.Array, jax.Array]:
        if self.init_region is None:
            return self.space.bounds()
        dtype = self.space.jdtype
        shape = (self.space.dim,)
        return jnp.full(shape, self.init_region[0], dtype), jnp.full(shape, self.init_region[1], dtype)

    def initial_sigma(self) -> float:
        if self.sigma0 is not None:
            return self.sigma0
        if self.init_region is not None:
            return 0.25 * (self.init_region[1] - self.init_region[0])
        widths = [hi - lo for lo, hi in zip(self.space.lower, self.space.upper)]
        return 0.25 * sum(widths) / len(widths)


class CMAState(NamedTuple):
    """CMA-ES state (a pytree)."""

    mean: jax.Array  # (d,) in loop.fitness_dtype, as raw and best_x (see the module docstring)
    sigma: jax.Array  # ()
    cov: jax.Array  # (d, d)
    basis: jax.Array  # (d, d) eigenvectors of cov
    scales: jax.Array  # (d,) square roots of cov's eigenvalues
    path_c: jax.Array  # (d,)
    path_sigma: jax.Array  # (d,)
    popsize: jax.Array  # () int32, active rows of this run
    sigma_start: jax.Array  # () this run's initial sigma
    steps: jax.Array  # (max_popsize, d) y of the last ask
    raw: jax.Array  # (max_popsize, d) unrepaired samples of the last ask
    run_generation: jax.Array  # () generations since the last restart
    run_best: jax.Array  # () best fitness of this run (loop.fitness_dtype, as every fitness field)
    run_best_generation: jax.Array  # ()
    best_history: jax.Array  # (history_length,) best fitness of recent generations
    flat_generations: jax.Array  # () int32 consecutive generations of flat fitness
    bounds_penalised: jax.Array  # () bool: the mean left the box in this run, so repairs are penalised
    restarts: jax.Array  # () int32
    large_runs: jax.Array  # () BIPOP: doublings done
    evals_large: jax.Array  # () BIPOP budget of each regime
    evals_small: jax.Array  # ()
    small_regime: jax.Array  # () bool, the current run is a BIPOP small run
    terminations: jax.Array  # (len(TERMINATION_REASONS),) int32 counts
    restart_key: jax.Array
    best_x: jax.Array
    best_f: jax.Array
    generation: jax.Array
    evaluations: jax.Array
    nonfinite: jax.Array  # () int32: non-finite fitness values told (counted rows)


class _Params(NamedTuple):
    weights: jax.Array  # (max_popsize,) by rank: positive for the best mu, negative after
    mu_eff: jax.Array
    c_c: jax.Array
    c_sigma: jax.Array
    c_1: jax.Array
    c_mu: jax.Array
    damping: jax.Array


def _params(popsize: jax.Array, config: CMAConfig) -> _Params:
    """pycma 4.5's default constants for a (traced) population size, with
    active CMA's negative weights for the worse half (Hansen's tutorial, 2016,
    eqs. 49-53, as pycma's default). Where pycma refines the tutorial it is
    followed: c_sigma = min(1/2, (mu_eff + 2) / (d + mu_eff + 3)), c_1 scaled
    by min(1, lambda / 6), c_mu with pycma's rank-mu offset 1/4, and the
    damping's dimension attenuation."""
    dtype = config.space.jdtype
    d = float(config.space.dim)
    lam = popsize.astype(dtype)
    mu = jnp.floor(lam / 2)
    rank = jnp.arange(config.max_popsize, dtype=dtype)
    raw = jnp.where(rank < lam, jnp.log((lam + 1) / 2) - jnp.log(rank + 1), 0.0)
    positive = rank < mu
    raw_pos = jnp.where(positive, raw, 0.0)
    raw_neg = jnp.where(positive, 0.0, raw)  # <= 0
    mu_eff = jnp.sum(raw_pos) ** 2 / jnp.sum(raw_pos * raw_pos)
    mu_eff_neg = jnp.sum(raw_neg) ** 2 / jnp.maximum(jnp.sum(raw_neg * raw_neg), jnp.finfo(dtype).tiny)
    c_c = (4 + mu_eff / d) / (d + 4 + 2 * mu_eff / d)
    c_sigma = jnp.minimum(0.5, (mu_eff + 2) / (d + mu_eff + 3))
    c_1 = jnp.minimum(1.0, lam / 6) * 2 / ((d + 1.3) ** 2 + mu_eff)
    c_mu = jnp.minimum(1 - c_1, 2 * (0.25 + mu_eff - 2 + 1 / mu_eff) / ((d + 2) ** 2 + mu_eff))
    alpha_neg = jnp.minimum(
        jnp.minimum(1 + c_1 / c_mu, 1 + 2 * mu_eff_neg / (mu_eff + 2)), (1 - c_1 - c_mu) / (d * c_mu)
    )
    weights = jnp.where(
        positive,
        raw_pos / jnp.sum(raw_pos),
        alpha_neg * raw_neg / jnp.maximum(-jnp.sum(raw_neg), jnp.finfo(dtype).tiny),
    )
    # pycma: the sqrt((mu_eff - 1) / (d + 1)) term is inflated by up to 3 as d
    # grows (its _CSA_dampfac_mueff_inner = 3, attenuated below d = 9).
    inflation = max(1.0, 3.0 * (1 - 0.5 ** (d / 9)))
    damping = 1 + 2 * jnp.maximum(0.0, inflation * jnp.sqrt((mu_eff - 1) / (d + 1)) - 1) + c_sigma
    return _Params(weights.astype(dtype), mu_eff, c_c, c_sigma, c_1, c_mu, damping)


def _fresh_run(key, popsize, sigma, config: CMAConfig, state: Optional[CMAState] = None, **carry):
    """A new run's distribution at a random mean in the start region."""
    d, dtype = config.space.dim, config.space.jdtype
    fitness_dtype = loop.fitness_dtype(config.space)
    low, high = config.region()
    mean = jax.random.uniform(key, (d,), fitness_dtype, low, high)
    eye = jnp.eye(d, dtype=dtype)
    zeros = jnp.zeros((d,), dtype)
    return dict(
        mean=mean,
        sigma=jnp.asarray(sigma, dtype),
        cov=eye,
        basis=eye,
        scales=jnp.ones((d,), dtype),
        path_c=zeros,
        path_sigma=zeros,
        popsize=jnp.asarray(popsize, jnp.int32),
        sigma_start=jnp.asarray(sigma, dtype),
        run_generation=jnp.asarray(0, jnp.int32),
        run_best=jnp.asarray(jnp.inf, fitness_dtype),
        run_best_generation=jnp.asarray(0, jnp.int32),
        best_history=jnp.full((config.history_length,), jnp.inf, fitness_dtype),
        flat_generations=jnp.asarray(0, jnp.int32),
        bounds_penalised=jnp.asarray(False),
        **carry,
    )


@functools.partial(jax.jit, static_argnames="config")
def init(key: jax.Array, config: CMAConfig) -> CMAState:
    d, dtype, rows = config.space.dim, config.space.jdtype, config.max_popsize
    mean_key, restart_key = jax.random.split(key)
    run = _fresh_run(mean_key, config.base_popsize, config.initial_sigma(), config)
    return CMAState(
        **run,
        steps=jnp.zeros((rows, d), dtype),
        raw=jnp.zeros((rows, d), loop.fitness_dtype(config.space)),
        restarts=jnp.asarray(0, jnp.int32),
        large_runs=jnp.asarray(0, jnp.int32),
        evals_large=jnp.asarray(0, jnp.int32),
        evals_small=jnp.asarray(0, jnp.int32),
        # pycma's BIPOP books the first run's evaluations to the small regime.
        small_regime=jnp.asarray(config.restarts == "bipop"),
        terminations=jnp.zeros((len(TERMINATION_REASONS),), jnp.int32),
        restart_key=restart_key,
        best_x=run["mean"],
        best_f=jnp.asarray(jnp.inf, loop.fitness_dtype(config.space)),
        generation=jnp.asarray(0, jnp.int32),
        evaluations=jnp.asarray(0, jnp.int32),
        nonfinite=jnp.asarray(0, jnp.int32),
    )


@functools.partial(jax.jit, static_argnames="config")
def ask(key: jax.Array, state: CMAState, config: CMAConfig) -> tuple[jax.Array, CMAState]:
    """max_popsize candidates m + sigma B D z; rows >= state.popsize are inactive."""
    z = jax.random.normal(key, (config.max_popsize, config.space.dim), config.space.jdtype)
    steps = (z * state.scales) @ state.basis.T
    raw = state.mean + (state.sigma * steps).astype(state.mean.dtype)
    return config.space.repair(raw), state._replace(steps=steps, raw=raw)


def _stop_reasons(state: CMAState, new: dict, fitness, active, evals_large, config: CMAConfig):
    """Booleans in TERMINATION_REASONS order for the updated run `new`."""
    d = config.space.dim
    sigma, mean, cov, scales = new["sigma"], new["mean"], new["cov"], new["scales"]
    gen = new["run_generation"]
    full_history = gen >= config.history_length
    active_f = jnp.where(active, fitness, jnp.nan)
    f_hi = jnp.nanmax(active_f)
    f_lo = jnp.nanmin(active_f)
    hist = new["best_history"]
    tolfun = full_history & (jnp.maximum(f_hi, jnp.max(hist)) - jnp.minimum(f_lo, jnp.min(hist)) < config.tolfun)
    diag = jnp.sqrt(jnp.diag(cov))
    tolx = jnp.all(sigma * diag < config.tolx) & jnp.all(sigma * jnp.abs(new["path_c"]) < config.tolx)
    condition = jnp.max(scales) ** 2 > config.condition_limit * jnp.min(scales) ** 2
    axis = gen % d
    noeffectaxis = jnp.all(mean == mean + 0.1 * sigma * scales[axis] * new["basis"][:, axis])
    noeffectcoord = jnp.any(mean == mean + 0.2 * sigma * diag)
    flat = new["flat_generations"] > FLAT_GENERATIONS
    stagnation = gen - new["run_best_generation"] > config.stagnation_limit
    tolupsigma = sigma * jnp.max(scales) > 1e20 * new["sigma_start"]
    finite = jnp.isfinite(sigma) & jnp.all(jnp.isfinite(mean)) & jnp.all(jnp.isfinite(cov))
    # pycma's BIPOP: a small run (not the first run) may use half the large runs' evaluations so far.
    maxiter = (
        state.small_regime & (state.restarts > 0) & (gen * state.popsize >= 0.5 * evals_large)
        if config.restarts == "bipop"
        else jnp.asarray(False)
    )
    return jnp.stack(
        [tolfun, tolx, condition, noeffectaxis, noeffectcoord, flat, stagnation, tolupsigma, ~finite, maxiter]
    )


def _update(state: CMAState, fitness, active, config: CMAConfig) -> dict:
    """One CMA generation from ranked fitness (inactive rows rank last)."""
    d, dtype = config.space.dim, config.space.jdtype
    p = _params(state.popsize, config)
    ranked = jnp.where(active, fitness, jnp.inf)
    order = jnp.argsort(ranked)
    # pycma's flat fitness: the best equals the 75th-percentile value.
    flat = ranked[order[0]] == ranked[order[(3 * state.popsize) // 4]]
    selected = state.steps[order]
    step = jnp.maximum(p.weights, 0.0) @ selected  # the mean moves by the positive weights only
    inv_sqrt = (state.basis / state.scales) @ state.basis.T
    path_sigma = (1 - p.c_sigma) * state.path_sigma + jnp.sqrt(p.c_sigma * (2 - p.c_sigma) * p.mu_eff) * (
        inv_sqrt @ step
    )
    chi_n = math.sqrt(d) * (1 - 1 / (4 * d) + 1 / (21 * d * d))
    gen = state.run_generation + 1
    norm_ps = jnp.linalg.norm(path_sigma)
    h_sigma = norm_ps / jnp.sqrt(1 - (1 - p.c_sigma) ** (2 * gen.astype(dtype))) / chi_n < 1.4 + 2 / (d + 1)
    path_c = (1 - p.c_c) * state.path_c + h_sigma * jnp.sqrt(p.c_c * (2 - p.c_c) * p.mu_eff) * step
    # Active CMA: a negative weight acts on a step rescaled to Mahalanobis
    # length sqrt(d), so long bad steps cannot make C indefinite.
    whitened = jnp.sum((selected @ inv_sqrt.T) ** 2, axis=1)
    weights = jnp.where(p.weights < 0, p.weights * d / jnp.maximum(whitened, jnp.finfo(dtype).tiny), p.weights)
    rank_mu = (selected * weights[:, None]).T @ selected
    stall = (1 - h_sigma) * p.c_1 * p.c_c * (2 - p.c_c)
    decay = 1 - p.c_1 - p.c_mu * jnp.sum(p.weights) + stall
    cov = decay * state.cov + p.c_1 * jnp.outer(path_c, path_c) + p.c_mu * rank_mu
    cov = (cov + cov.T) / 2
    eigenvalues, basis = jnp.linalg.eigh(cov)
    floor = jnp.max(eigenvalues) / config.condition_limit
    scales = jnp.sqrt(jnp.maximum(eigenvalues, floor))
    sigma = state.sigma * jnp.exp(jnp.minimum(1.0, (p.c_sigma / p.damping) * (norm_ps / chi_n - 1)))
    gen_best = jnp.min(jnp.where(active, fitness, jnp.inf)).astype(state.run_best.dtype)
    improved = gen_best < state.run_best
    return dict(
        mean=state.mean + (state.sigma * step).astype(state.mean.dtype),
        sigma=sigma,
        cov=cov,
        basis=basis,
        scales=scales,
        path_c=path_c,
        path_sigma=path_sigma,
        popsize=state.popsize,
        sigma_start=state.sigma_start,
        run_generation=gen,
        run_best=jnp.where(improved, gen_best, state.run_best),
        run_best_generation=jnp.where(improved, gen, state.run_best_generation),
        best_history=jnp.roll(state.best_history, 1).at[0].set(gen_best),
        flat_generations=jnp.where(flat, state.flat_generations + 1, 0),
        bounds_penalised=state.bounds_penalised,
    )


def _next_run_size(key, state: CMAState, evals_large, evals_small, config: CMAConfig):
    """(popsize, sigma, large_runs, small_regime) of the run after a restart."""
    base, top = config.base_popsize, config.max_popsize
    sigma0 = config.initial_sigma()
    doubled = jnp.minimum(base * 2 ** (state.large_runs + 1), top).astype(jnp.int32)
    if config.restarts == "ipop":
        return doubled, jnp.asarray(sigma0), state.large_runs + 1, jnp.asarray(False)
    # BIPOP as pycma's fmin2: a small run whenever the small regime (which
    # the first run is booked to) has used fewer evaluations; its step is
    # sigma0 * 0.01^u and its population base * (last large / base)^(v^2),
    # with u and v independent uniforms.
    step_u, size_u = jax.random.uniform(key, (2,))
    small_size = jnp.floor(base * 2.0 ** (state.large_runs * size_u * size_u)).astype(jnp.int32)
    go_small = evals_small < evals_large
    popsize = jnp.where(go_small, jnp.clip(small_size, 2, top), doubled)
    sigma = jnp.where(go_small, sigma0 * 0.01**step_u, sigma0)
    large_runs = jnp.where(go_small, state.large_runs, state.large_runs + 1)
    return popsize, sigma, large_runs, go_small


def bound_penalty(state: CMAState, population: jax.Array, fitness: jax.Array, active, config: CMAConfig):
    """Penalty of each sample repaired into the box, as pycma's BoundPenalty
    (Hansen et al. 2009): the squared repair distance per coordinate, divided
    by that coordinate's variance relative to the others (xi_i), times a weight
    that puts a repair of one step length at twice the generation's
    interquartile fitness range. An unscaled penalty is negligible beside
    large f values, so the mean drifts outside the box and stalls there
    (BBOB f10 at d = 10: 141 above f_opt after 1e4 evaluations in [-5, 5])."""
    fitness_dtype = loop.fitness_dtype(config.space)
    variances = jnp.diag(state.cov)
    xi = jnp.exp(0.9 * (jnp.log(variances) - jnp.mean(jnp.log(variances))))
    distance = jnp.sum((state.raw - population) ** 2 / xi, axis=1).astype(fitness_dtype)
    finite = active & jnp.isfinite(fitness)
    spread = jnp.nanquantile(jnp.where(finite, fitness, jnp.nan), 0.75) - jnp.nanquantile(
        jnp.where(finite, fitness, jnp.nan), 0.25
    )
    spread = jnp.where(jnp.isfinite(spread) & (spread > 0), spread, 1.0)
    weight = 2 * spread / (state.sigma**2 * jnp.mean(variances)).astype(fitness_dtype)
    return jnp.where(distance > 0, weight * distance, 0.0)


def _update_distribution(state: CMAState, population: jax.Array, fitness: jax.Array, config: CMAConfig) -> CMAState:
    """One generation (loop.make_tell keeps best-so-far and the counters);
    a terminated run restarts (and is counted). Ranks and stop criteria use
    the fitness in its own precision."""
    active = counted_rows(state, config)
    # pycma's BoundPenalty weights stay zero until the mean leaves the box:
    # a mean that approaches a bound from inside (BBOB f5's optimum is a
    # corner) is not held back from it.
    low, high = config.space.bounds()
    penalised = state.bounds_penalised | jnp.any((state.mean < low) | (state.mean > high))
    penalty = jnp.where(penalised, bound_penalty(state, population, fitness, active, config), 0.0)
    new = _update(state._replace(bounds_penalised=penalised), fitness + penalty, active, config)
    used = state.popsize
    evals_large = state.evals_large + jnp.where(state.small_regime, 0, used)
    evals_small = state.evals_small + jnp.where(state.small_regime, used, 0)
    reasons = _stop_reasons(state, new, fitness, active, evals_large, config)
    stop = jnp.any(reasons) if config.restarts != "none" else reasons[-1]

    size_key, mean_key, next_key = jax.random.split(state.restart_key, 3)
    popsize, sigma, large_runs, small = _next_run_size(size_key, state, evals_large, evals_small, config)
    fresh = _fresh_run(mean_key, popsize, sigma, config)
    run = jax.tree_util.tree_map(lambda a, b: jnp.where(stop, a, b).astype(b.dtype), fresh, new)
    return state._replace(
        **run,
        restarts=state.restarts + stop.astype(jnp.int32),
        large_runs=jnp.where(stop, large_runs, state.large_runs),
        evals_large=evals_large,
        evals_small=evals_small,
        small_regime=jnp.where(stop, small, state.small_regime),
        terminations=state.terminations + (reasons & stop).astype(jnp.int32),
        restart_key=next_key,
    )


def counted_rows(state: CMAState, config: CMAConfig) -> jax.Array:
    """The asked rows that belong to the current run (the rest are inactive)."""
    return jnp.arange(config.max_popsize) < state.popsize


tell = loop.make_tell(_update_distribution, lambda config: config.max_popsize, counted_rows)


STRATEGY = loop.Strategy("cmaes", init, ask, tell, counted_rows)


def run(key, config: CMAConfig, objective: loop.Objective, generations: int, progress=None, progress_every: int = 10):
    """Whole CMA-ES run (with restarts) under lax.scan."""
    return loop.run(STRATEGY, key, config, objective, generations, progress, progress_every)
