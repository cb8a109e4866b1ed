"""The genetic algorithm's operator arms: what the bandit chooses among for
``GENETIC_ALGORITHM`` (genetics, layer 7, runs them with RunGeneration).

An arm is a crossover operator x a mutation strength; the other settings are
the same for every arm, so the bandit compares what it varies. "light" mutates
an eighth of the genes by a tenth of each range, "heavy" half of them by a
quarter.
"""

from __future__ import annotations

from collections.abc import Mapping

from chimera.v1 import common_pb2

__all__ = ["GA_ARMS", "names", "operators"]

_CROSSOVERS = {
    "single_point": common_pb2.CROSSOVER_METHOD_SINGLE_POINT,
    "uniform": common_pb2.CROSSOVER_METHOD_UNIFORM,
    "blend": common_pb2.CROSSOVER_METHOD_BLEND,
}
#: name -> (per-gene mutation rate, sigma as a fraction of each range).
_MUTATIONS = {"light": (0.125, 0.1), "heavy": (0.5, 0.25)}


def _settings(crossover: int, rate: float, sigma: float) -> common_pb2.OperatorSettings:
    return common_pb2.OperatorSettings(
        mutation_rate=rate,
        mutation_sigma=sigma,
        crossover_method=crossover,  # type: ignore[arg-type]
        crossover_rate=0.9,
        blend_alpha=0.5,
        tournament_size=3,
        elite_count=1,
    )


#: Arm name ("<crossover>/<mutation>") -> its operator settings, in the bandit's arm order.
GA_ARMS: Mapping[str, common_pb2.OperatorSettings] = {
    f"{c}/{m}": _settings(method, rate, sigma)
    for c, method in _CROSSOVERS.items()
    for m, (rate, sigma) in _MUTATIONS.items()
}


def names() -> tuple[str, ...]:
    return tuple(GA_ARMS)


def operators(arm: str) -> common_pb2.OperatorSettings:
    settings = common_pb2.OperatorSettings()
    settings.CopyFrom(GA_ARMS[arm])
    return settings
