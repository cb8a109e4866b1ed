"""Model-based tuning in JAX: a Gaussian-process surrogate of genome → KPI.

Parameters are scaled to [0, 1] by their bounds and the objective is
standardised (and negated when minimised, so the model always maximises).
The GP has a squared-exponential kernel; its length scale and noise are
chosen by the log marginal likelihood over a small grid (``vmap``), and the
next candidate is the one with the largest expected improvement among
random points in the box plus perturbations of the best observation, all
drawn from an explicit PRNG key. Beyond :data:`MAX_MODEL_POINTS`
observations the model is fitted to the best of them (the kernel matrix is
cubic in its size; a request may carry 100,000). ``model_r_squared`` is the leave-one-out
R² of the posterior mean (closed form from the inverse kernel matrix), so
it measures prediction, not interpolation. Shapes are padded to powers of
two, at least 32 x 8 (masked rows / zero columns), so that requests of
different sizes reuse a few compiled programs: compiling costs ~1.5 s of
CPU, a call afterwards milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from chimera.refinement.jitting import jit_small

__all__ = ["MAX_MODEL_POINTS", "MODEL_NAME", "Suggestion", "suggest"]

#: Observations the GP is fitted to at most: the best ones beyond that.
MAX_MODEL_POINTS = 256

MODEL_NAME = "gaussian_process_rbf"
_LENGTH_SCALES = jnp.array([0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.5])
_NOISES = jnp.array([1e-4, 1e-2, 0.1, 0.3])
_RANDOM_CANDIDATES = 2048
_LOCAL_CANDIDATES = 512


@dataclass(frozen=True)
class Suggestion:
    parameters: np.ndarray
    predicted_value: float
    expected_improvement: float
    best_parameters: np.ndarray
    best_value: float
    loo_r_squared: float


#: Smallest padded shapes: most requests (up to 32 observations of up to 8
#: parameters) then share one compiled program.
_MIN_ROWS, _MIN_COLS = 32, 8


def _bucket(n: int, smallest: int) -> int:
    return max(smallest, 1 << max(0, (n - 1).bit_length()))


def _kernel(a: jax.Array, b: jax.Array, length: jax.Array) -> jax.Array:
    d2 = jnp.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=-1)
    return jnp.exp(-0.5 * d2 / length**2)


def _gram(x: jax.Array, mask: jax.Array, length: jax.Array, noise: jax.Array) -> jax.Array:
    # Padded rows become independent unit-variance points with target 0, which
    # leaves the posterior of the real points unchanged.
    m = mask[:, None] * mask[None, :]
    k = _kernel(x, x, length) * m + jnp.diag(1.0 - mask)
    return k + noise * jnp.diag(mask) + 1e-8 * jnp.eye(x.shape[0])


def _log_likelihood(
    x: jax.Array, y: jax.Array, mask: jax.Array, length: jax.Array, noise: jax.Array
) -> jax.Array:
    chol = jnp.linalg.cholesky(_gram(x, mask, length, noise))
    alpha = jax.scipy.linalg.cho_solve((chol, True), y)
    # Padded rows contribute log 1 = 0 to the determinant and 0 to the fit.
    return -0.5 * y @ alpha - jnp.sum(jnp.log(jnp.diag(chol)))


@jit_small(static_argnames=("candidates",))
def _fit_and_search(
    key: jax.Array, x: jax.Array, y: jax.Array, mask: jax.Array, dims: jax.Array, candidates: int
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    grid_l, grid_n = jnp.meshgrid(_LENGTH_SCALES, _NOISES, indexing="ij")
    grid_l, grid_n = grid_l.ravel(), grid_n.ravel()
    scores = jax.vmap(lambda l, s: _log_likelihood(x, y, mask, l, s))(grid_l, grid_n)
    best_h = jnp.argmax(jnp.where(jnp.isfinite(scores), scores, -jnp.inf))
    length, noise = grid_l[best_h], grid_n[best_h]
    gram = _gram(x, mask, length, noise)
    inv = jnp.linalg.inv(gram)
    alpha = inv @ y
    # Leave-one-out means: y_i - alpha_i / inv_ii (Rasmussen & Williams, eq. 5.12).
    loo = y - alpha / jnp.diag(inv)
    n = mask.sum()
    y_mean = jnp.sum(y * mask) / n
    ss_tot = jnp.sum(mask * (y - y_mean) ** 2)
    r2 = 1.0 - jnp.sum(mask * (y - loo) ** 2) / jnp.maximum(ss_tot, 1e-12)

    best_i = jnp.argmax(jnp.where(mask > 0, y, -jnp.inf))
    k_rand, k_local = jax.random.split(key)
    d = x.shape[1]
    uniform = jax.random.uniform(k_rand, (candidates, d))
    local = x[best_i] + 0.1 * jax.random.normal(k_local, (_LOCAL_CANDIDATES, d))
    cand = jnp.clip(jnp.concatenate([uniform, local]), 0.0, 1.0) * dims

    k_star = _kernel(cand, x, length) * mask[None, :]
    mean = k_star @ alpha
    var = jnp.maximum(1.0 + noise - jnp.sum((k_star @ inv) * k_star, axis=1), 1e-12)
    sd = jnp.sqrt(var)
    z = (mean - y[best_i]) / sd
    ei = (mean - y[best_i]) * jax.scipy.stats.norm.cdf(z) + sd * jax.scipy.stats.norm.pdf(z)
    pick = jnp.argmax(ei)
    return cand[pick], mean[pick], ei[pick], r2


def suggest(
    key: jax.Array,
    parameters: np.ndarray,
    values: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    *,
    maximize: bool,
    max_points: int = MAX_MODEL_POINTS,
) -> Suggestion:
    """The next parameters to evaluate, from observations ``parameters`` (n, d) → ``values`` (n,)."""
    p = np.asarray(parameters, np.float64)
    v = np.asarray(values, np.float64)
    lower, upper = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
    n, d = p.shape
    if n < 2 or v.shape != (n,) or lower.shape != (d,) or upper.shape != (d,):
        raise ValueError("suggest needs (n >= 2, d) parameters, n values and d bounds")
    if not np.all(upper > lower):
        raise ValueError("every upper bound must exceed its lower bound")
    sign = 1.0 if maximize else -1.0
    target = sign * v
    best = int(np.argmax(target))
    best_parameters, best_value = p[best], float(v[best])
    if n > max_points:
        # The GP costs O(n^3); the best points are where improvement is sought.
        keep = np.argsort(-target, kind="stable")[:max_points]
        p, target, n = p[keep], target[keep], max_points
    centre, scale = target.mean(), target.std()
    scale = scale if scale > 0 else 1.0
    rows, cols = _bucket(n, _MIN_ROWS), _bucket(d, _MIN_COLS)
    x = np.zeros((rows, cols), np.float32)
    x[:n, :d] = (p - lower) / (upper - lower)
    y = np.zeros(rows, np.float32)
    y[:n] = (target - centre) / scale
    mask = np.zeros(rows, np.float32)
    mask[:n] = 1.0
    dims = np.zeros(cols, np.float32)
    dims[:d] = 1.0  # padded columns stay 0 in every candidate
    cand, mean, ei, r2 = _fit_and_search(
        key, jnp.asarray(x), jnp.asarray(y), jnp.asarray(mask), jnp.asarray(dims),
        _RANDOM_CANDIDATES,
    )
    return Suggestion(
        parameters=lower + np.asarray(cand, np.float64)[:d] * (upper - lower),
        predicted_value=sign * (float(mean) * scale + centre),
        expected_improvement=float(ei) * scale,
        best_parameters=best_parameters,
        best_value=best_value,
        loo_r_squared=float(r2),
    )
