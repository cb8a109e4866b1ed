"""Operator settings for layer 7's genetic algorithm.

From a run of this service: the strategy's current search distribution
(mean and per-dimension spread), with the mutation sigma set to that spread
as a fraction of each dimension's range. From a GA's recent generations:
Rechenberg's 1/5 success rule on the mutation sigma (widen when more than a
fifth of the generations improved the best, narrow otherwise), and a higher
mutation rate when the population's spread has collapsed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from chimera.evolution import strategies
from chimera.evolution.runs import RunRecord
from chimera.v1 import common_pb2

__all__ = ["from_generations", "from_run"]

_DEFAULT_SIGMA = 0.1
_SUCCESS_RATE = 0.2
_WIDEN, _NARROW = 1.22, 0.82
_COLLAPSED = 1e-3  # spread / range below which diversity counts as lost
_MAX_SIGMA = 10.0  # the contract's maximum


def _base(current: common_pb2.OperatorSettings, dim: int) -> common_pb2.OperatorSettings:
    settings = common_pb2.OperatorSettings()
    settings.CopyFrom(current)
    if not settings.mutation_rate:
        settings.mutation_rate = min(1.0, 1.0 / max(dim, 1))
    if settings.crossover_method == common_pb2.CROSSOVER_METHOD_UNSPECIFIED:
        settings.crossover_method = common_pb2.CROSSOVER_METHOD_BLEND
    if not settings.blend_alpha:
        settings.blend_alpha = 0.5
    if not settings.crossover_rate:
        settings.crossover_rate = 0.9
    del settings.search_mean[:]
    del settings.search_stddev[:]
    return settings


def from_run(record: RunRecord, current: common_pb2.OperatorSettings) -> common_pb2.OperatorSettings:
    mean, stddev = strategies.search_distribution(record.configured, record.state)
    lower, upper = (np.asarray(b, np.float64) for b in (record.spec.space.lower, record.spec.space.upper))
    settings = _base(current, len(mean))
    finite = np.isfinite(mean).all() and np.isfinite(stddev).all()
    if finite:
        settings.mutation_sigma = float(np.clip(np.mean(stddev / (upper - lower)), 0.0, _MAX_SIGMA))
        settings.search_mean.extend(np.clip(mean, lower, upper).tolist())
        settings.search_stddev.extend(np.maximum(stddev, 0.0).tolist())
    return settings


def from_generations(
    bounds: Sequence[tuple[float, float]],
    recent: Sequence[common_pb2.GenerationSummary],
    maximize: bool,
    current: common_pb2.OperatorSettings,
) -> common_pb2.OperatorSettings:
    settings = _base(current, len(bounds))
    best = np.asarray([g.best_fitness for g in recent], np.float64)
    if maximize:
        best = -best
    running = np.minimum.accumulate(best)
    improved = np.sum(running[1:] < running[:-1]) if len(best) > 1 else 0
    rate = improved / max(len(best) - 1, 1)
    sigma = current.mutation_sigma or _DEFAULT_SIGMA
    sigma *= _WIDEN if rate > _SUCCESS_RATE else _NARROW
    settings.mutation_sigma = float(min(sigma, _MAX_SIGMA))
    widths = np.asarray([hi - lo for lo, hi in bounds], np.float64)
    spread = recent[-1].diversity.mean_dimension_stddev
    if spread and spread / float(np.mean(widths)) < _COLLAPSED:
        settings.mutation_rate = min(1.0, 2.0 * settings.mutation_rate)
    return settings
