"""The service's strategy portfolio: one chimera.optim strategy per
``EvolutionAlgorithm``, its configuration for a problem, and what it hands
genetics (a search distribution).

OPENAI_ES is in the contract but not in the engine (its natural ES is SNES),
so requests naming it are refused rather than silently run as something else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from chimera.optim import cmaes, de, ga, loop, snes
from chimera.optim.space import Space
from chimera.v1 import evolution_pb2

__all__ = ["ARMS", "Portfolio", "Configured", "configure", "search_distribution"]

Algorithm = int  # an evolution_pb2.EvolutionAlgorithm value

# IPOP doubles the population at most twice here, so the largest generation a
# budget must leave room for stays 4x the first one.
_MAX_DOUBLINGS = 2


@dataclass(frozen=True)
class Configured:
    """A strategy set up for one problem; `generation_cost` bounds the
    evaluations of any one generation (CMA-ES's population grows on restarts)."""

    algorithm: Algorithm
    strategy: loop.Strategy
    config: Any
    population_size: int
    generation_cost: int
    hyperparameters: Mapping[str, float]


def _cma(space: Space, popsize: int | None) -> Configured:
    config = cmaes.CMAConfig(space, popsize=popsize, restarts="ipop", max_doublings=_MAX_DOUBLINGS)
    return Configured(
        evolution_pb2.EVOLUTION_ALGORITHM_CMA_ES, cmaes.STRATEGY, config, config.base_popsize,
        config.max_popsize,
        {"population_size": config.base_popsize, "sigma_init": config.initial_sigma(),
         "max_population_size": config.max_popsize},
    )


def _snes(space: Space, popsize: int | None) -> Configured:
    config = snes.SNESConfig(space, popsize=popsize)
    return Configured(
        evolution_pb2.EVOLUTION_ALGORITHM_SNES, snes.STRATEGY, config, config.size, config.size,
        {"population_size": config.size, "learning_rate_mean": config.lr_mean,
         "learning_rate_sigma": config.sigma_rate},
    )


def _de(space: Space, popsize: int | None) -> Configured:
    size = popsize if popsize is not None else max(8, min(4 * space.dim, 200))
    config = de.DEConfig(space, pop_size=size)
    return Configured(
        evolution_pb2.EVOLUTION_ALGORITHM_DIFFERENTIAL_EVOLUTION, de.STRATEGY, config, size, size,
        {"population_size": size, "differential_weight": config.differential_weight,
         "crossover_rate": config.crossover_rate},
    )


def _ga(space: Space, popsize: int | None) -> Configured:
    size = popsize if popsize is not None else max(16, min(8 * space.dim, 256))
    config = ga.GAConfig(space, pop_size=size)
    return Configured(
        evolution_pb2.EVOLUTION_ALGORITHM_GENETIC_ALGORITHM, ga.STRATEGY, config, size, size,
        {"population_size": size, "crossover_rate": config.crossover_rate,
         "tournament_size": config.tournament_size},
    )


#: Bandit arm name -> (algorithm, factory); the order is the bandit's arm order.
ARMS: Mapping[str, tuple[Algorithm, Callable[[Space, int | None], Configured]]] = {
    "cma_es": (evolution_pb2.EVOLUTION_ALGORITHM_CMA_ES, _cma),
    "snes": (evolution_pb2.EVOLUTION_ALGORITHM_SNES, _snes),
    "differential_evolution": (evolution_pb2.EVOLUTION_ALGORITHM_DIFFERENTIAL_EVOLUTION, _de),
    # The engine's GA run here, ask/tell (layer 7 breeds with its own operator
    # arms, which SelectAlgorithm(GENETIC_ALGORITHM) chooses).
    "genetic_algorithm": (evolution_pb2.EVOLUTION_ALGORITHM_GENETIC_ALGORITHM, _ga),
}
_BY_ALGORITHM = {algorithm: name for name, (algorithm, _) in ARMS.items()}

#: Smallest population each strategy works with (DE needs 3 partners + 1).
MIN_POPULATION = {"cma_es": 2, "snes": 2, "differential_evolution": 4, "genetic_algorithm": 4}


class Portfolio:
    """Looks arms up by algorithm or name."""

    names = tuple(ARMS)

    @staticmethod
    def arm_name(algorithm: Algorithm) -> str | None:
        return _BY_ALGORITHM.get(algorithm)

    @staticmethod
    def algorithm(name: str) -> Algorithm:
        return ARMS[name][0]


def configure(name: str, space: Space, popsize: int | None) -> Configured:
    return ARMS[name][1](space, popsize)


def search_distribution(configured: Configured, state: Any) -> tuple[np.ndarray, np.ndarray]:
    """(mean, per-dimension stddev) of where the strategy now samples: CMA-ES's
    sigma * sqrt(diag C) around its mean, SNES's mean and sigma, DE's
    population centroid and spread."""
    if configured.strategy is cmaes.STRATEGY:
        mean = np.asarray(state.mean, np.float64)
        stddev = float(state.sigma) * np.sqrt(np.clip(np.diag(np.asarray(state.cov, np.float64)), 0.0, None))
    elif configured.strategy is snes.STRATEGY:
        mean = np.asarray(state.mean, np.float64)
        stddev = np.asarray(state.sigma, np.float64)
    else:
        population = np.asarray(state.population, np.float64)
        mean, stddev = population.mean(axis=0), population.std(axis=0)
    return mean, stddev
