"""Runs of the portfolio: server-side runs on a benchmark (Evolve, StreamRun)
in bounded chunks of generations, and ask/tell runs (StartRun, Step) whose
fitness the caller evaluates. Every run stops before a generation that could
exceed its evaluation budget and says so; its outcome goes to the bandit.
"""

from __future__ import annotations

import collections
import functools
import logging
import math
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from chimera.evolution import ga_arms, strategies
from chimera.evolution.bandits import BanditBook, Choice
from chimera.evolution.core import EvolutionCore, RestartPolicy
from chimera.evolution.screening import BinPackingScreen
from chimera.evolution.problems import Limits, ProblemSpec, benchmark_objective, problem_spec
from chimera.framework.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted
from chimera.optim import bandit, cmaes, loop
from chimera.v1 import common_pb2, evolution_pb2

__all__ = ["ARM_SETS", "GA_ARM_SET", "PORTFOLIO", "REFERENCE_EVALUATIONS", "Runs", "measured_reward"]

_log = logging.getLogger("chimera.evolution")

#: Rewards are relative improvement per evaluation, scaled to this many
#: evaluations (chimera.optim.bandit.improvement_reward).
REFERENCE_EVALUATIONS = 1000
GENETIC_ALGORITHM = evolution_pb2.EVOLUTION_ALGORITHM_GENETIC_ALGORITHM
#: The bandit's arm sets: this service's strategies, and the GA operator arms layer 7 runs.
PORTFOLIO, GA_ARM_SET = "portfolio", "genetic_algorithm"
ARM_SETS = {PORTFOLIO: strategies.Portfolio.names, GA_ARM_SET: ga_arms.names()}
# Chunk sizes of a server-side run: two scan lengths, so jit compiles each
# strategy at most twice per problem shape.
_CHUNKS = (8, 1)
# Members used for the exact mean pairwise distance of an ask/tell population.
_PAIRWISE_SAMPLE = 512

Event = tuple[str, Any]  # ("choice" | "generation" | "result", message)


@dataclass
class RunRecord:
    """One run; `lock` serialises its Steps."""

    run_id: str
    spec: ProblemSpec
    configured: strategies.Configured
    choice: evolution_pb2.AlgorithmChoice
    state: Any
    key: jax.Array
    lock: threading.Lock = field(default_factory=threading.Lock)
    pending: np.ndarray | None = None  # the asked population (all rows)
    generation: int = 0
    first_best: float = math.inf
    finished: bool = False
    stop_reason: str = ""
    last_summary: common_pb2.GenerationSummary | None = None

    spent_before: int = 0  # evaluations of the states that restarts replaced

    @property
    def evaluations(self) -> int:
        return self.spent_before + int(self.state.evaluations)

    def user_fitness(self, engine_value: float) -> float:
        return -engine_value if self.spec.maximize else engine_value


def pairwise_diversity(members: np.ndarray, restarts: int) -> common_pb2.DiversityStats:
    """Exact mean and RMS pairwise distance (over the first 512 members) and
    the mean per-dimension standard deviation."""
    sample = members[:_PAIRWISE_SAMPLE].astype(np.float64)
    n = len(sample)
    if n < 2:
        mean = rms = 0.0
    else:
        squared = np.sum(sample * sample, axis=1)
        d2 = np.clip(squared[:, None] + squared[None, :] - 2.0 * sample @ sample.T, 0.0, None)
        off = ~np.eye(n, dtype=bool)
        mean, rms = float(np.mean(np.sqrt(d2[off]))), float(np.sqrt(np.mean(d2[off])))
    return common_pb2.DiversityStats(
        mean_pairwise_distance=mean,
        mean_dimension_stddev=float(np.mean(np.std(members.astype(np.float64), axis=0))),
        restarts=restarts,
        rms_pairwise_distance=rms,
    )


@functools.cache
def _init(strategy: loop.Strategy) -> Callable[..., Any]:
    """The strategy's init under jit (one compile per config, not eager op by op)."""
    return jax.jit(strategy.init, static_argnums=1)


def _restarts(state: Any) -> int:
    return int(state.restarts) if isinstance(state, cmaes.CMAState) else 0


def measured_reward(measurement: evolution_pb2.RunMeasurement) -> float:
    """Relative improvement of the best per evaluation (the engine's
    improvement_reward, which minimises: a MAXIMIZE run is negated)."""
    sign = -1.0 if measurement.direction == common_pb2.OPTIMIZATION_DIRECTION_MAXIMIZE else 1.0
    return bandit.improvement_reward(
        sign * measurement.first_best, sign * measurement.final_best,
        measurement.evaluations, REFERENCE_EVALUATIONS,
    )


def _scores(picked: Choice) -> str:
    return " (UCB1 scores: " + ", ".join(
        f"{a} {s:.4g}" for a, s in zip(picked.state.arms, picked.scores)
    ) + ")"


def _budget_reason(used: int, budget: int, cost: int) -> str:
    return f"evaluation budget used up: {used} of {budget} evaluations spent, the next generation needs up to {cost}"


class _Restarter:
    """IPOP restarts of SNES and DE by the core's restart rule (CMA-ES has its
    own); keeps the run's best across the states it replaces."""

    def __init__(self, core: EvolutionCore, record: RunRecord, patience: int, limits: Limits) -> None:
        self._core, self._record = core, record
        configured, dim = record.configured, record.spec.space.dim
        self._active = configured.strategy is not cmaes.STRATEGY
        cap = min(4 * configured.population_size, limits.population, limits.population_values // dim)
        self._policy = RestartPolicy(
            maximize=False,  # the engine minimises; MAXIMIZE problems are negated
            tolerance=0.0,
            patience=patience or 10 + math.ceil(30 * dim / configured.population_size),
            max_population=max(cap, configured.population_size),
        )
        self._segment: list[float] = []  # best so far per generation since the last (re)start
        self._restarts = 0
        self.best_f, self.best_x = math.inf, np.asarray(record.state.best_x)

    @property
    def spent_before(self) -> int:
        return self._record.spent_before

    def restarts(self, state: Any) -> int:
        return _restarts(state) if not self._active else self._restarts

    def keep_best(self) -> None:
        state = self._record.state
        if float(state.best_f) < self.best_f:
            self.best_f, self.best_x = float(state.best_f), np.asarray(state.best_x)

    def after(self, best: np.ndarray) -> str:
        """After a chunk: restart (a fresh state, doubled population) or stop
        (a reason) when the rule says so; "" to go on."""
        self.keep_best()
        if not self._active:
            return ""
        self._segment.extend(best.tolist())
        record = self._record
        verdict = self._core.restart_rule(self._policy, record.configured.population_size, self._segment)
        if verdict.decision == "stop":
            return verdict.reason
        if verdict.decision == "restart":
            arm = strategies.Portfolio.arm_name(record.configured.algorithm)
            assert arm is not None
            record.spent_before += int(record.state.evaluations)
            record.configured = strategies.configure(arm, record.spec.space, verdict.next_population)
            record.key, key = jax.random.split(record.key)
            record.state = _init(record.configured.strategy)(key, record.configured.config)
            self._segment, self._restarts = [], self._restarts + 1
            _log.info("run %s restarts (%s): %s", record.run_id, arm, verdict.reason)
        return ""


class Runs:
    """Chooses strategies, runs them and keeps the last `retention` runs."""

    def __init__(
        self, core: EvolutionCore, book: BanditBook, limits: Limits, retention: int = 256, max_concurrent: int = 2
    ) -> None:
        self._core = core
        self._book = book
        self._limits = limits
        self._retention = retention
        self._records: collections.OrderedDict[str, RunRecord] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._screen = BinPackingScreen()

    # -- choice ---------------------------------------------------------------

    def select(self, request: evolution_pb2.SelectAlgorithmRequest) -> evolution_pb2.AlgorithmChoice:
        spec = problem_spec(request.problem, self._limits, server_side=False)
        if request.algorithm == GENETIC_ALGORITHM:
            return self._choose_operators(spec)
        _, choice = self._choose(spec, request.algorithm, 0, "algorithm")
        return choice

    def _choose_operators(self, spec: ProblemSpec) -> evolution_pb2.AlgorithmChoice:
        """The bandit's genetic-algorithm arm for the class, with its operator settings."""
        picked = self._book.choose(GA_ARM_SET, spec.problem_class)
        settings = ga_arms.operators(picked.arm)
        return evolution_pb2.AlgorithmChoice(
            algorithm=GENETIC_ALGORITHM,
            problem_class=spec.problem_class,
            exploration=picked.exploration,
            reason=picked.reason + _scores(picked),
            hyperparameters={
                "mutation_rate": settings.mutation_rate,
                "mutation_sigma": settings.mutation_sigma,
                "crossover_rate": settings.crossover_rate,
                "crossover_method": float(settings.crossover_method),
            },
            arms=self._arms(picked.state, GENETIC_ALGORITHM),
            arm=picked.arm,
            operators=settings,
        )

    def _choose(
        self, spec: ProblemSpec, algorithm: int, population_size: int, field_name: str
    ) -> tuple[strategies.Configured, evolution_pb2.AlgorithmChoice]:
        if algorithm == evolution_pb2.EVOLUTION_ALGORITHM_UNSPECIFIED:
            picked = self._book.choose(PORTFOLIO, spec.problem_class)
            arm, exploration, state = picked.arm, picked.exploration, picked.state
            reason = picked.reason + _scores(picked)
        else:
            arm = strategies.Portfolio.arm_name(algorithm)
            if arm is None:
                raise InvalidArgument(
                    field_name,
                    "is not a strategy of the portfolio (CMA_ES, SNES, DIFFERENTIAL_EVOLUTION, "
                    "GENETIC_ALGORITHM)",
                )
            state = self._book.state(PORTFOLIO, spec.problem_class)
            exploration, reason = False, f"{arm}: requested by the caller"
        popsize = population_size or None
        if popsize is not None and not strategies.MIN_POPULATION[arm] <= popsize <= self._limits.population:
            raise InvalidArgument(
                "population_size",
                f"must be in [{strategies.MIN_POPULATION[arm]}, {self._limits.population}] for {arm}",
            )
        configured = strategies.configure(arm, spec.space, popsize)
        if configured.population_size * spec.space.dim > self._limits.population_values:
            raise InvalidArgument(
                "population_size",
                f"{configured.population_size} members of {spec.space.dim} dimensions exceed "
                f"{self._limits.population_values} values per population",
            )
        choice = evolution_pb2.AlgorithmChoice(
            algorithm=configured.algorithm,
            problem_class=spec.problem_class,
            exploration=exploration,
            reason=reason,
            hyperparameters={k: float(v) for k, v in configured.hyperparameters.items()},
            arms=self._arms(state),
            arm=arm,
        )
        return configured, choice

    @staticmethod
    def _arms(state: bandit.BanditState, algorithm: int | None = None) -> list[evolution_pb2.BanditArm]:
        """Each arm's statistics; ``algorithm`` for arms that share one (the GA's)."""
        return [
            evolution_pb2.BanditArm(
                algorithm=algorithm or strategies.Portfolio.algorithm(a),
                pulls=n,
                mean_reward=state.mean(a),
                arm=a,
            )
            for a, n in zip(state.arms, state.pulls)
        ]

    def report(self, request: evolution_pb2.ReportOutcomeRequest) -> evolution_pb2.ReportOutcomeResponse:
        """Records an outcome: the reward given, or computed from the run's measurement."""
        portfolio_ga = strategies.Portfolio.arm_name(GENETIC_ALGORITHM)
        if request.algorithm == GENETIC_ALGORITHM and request.arm != portfolio_ga:
            # Layer 7's operator arms; the portfolio's own GA arm is named by its arm name.
            arm_set, arm, shared = GA_ARM_SET, request.arm, GENETIC_ALGORITHM
            if arm not in ga_arms.GA_ARMS:
                raise InvalidArgument(
                    "arm", f"must be one of the genetic algorithm's arms {ga_arms.names()} or {portfolio_ga!r}"
                )
        else:
            arm_set, arm, shared = PORTFOLIO, strategies.Portfolio.arm_name(request.algorithm), None
            if arm is None:
                raise InvalidArgument(
                    "algorithm",
                    "is not a strategy of the portfolio (CMA_ES, SNES, DIFFERENTIAL_EVOLUTION, "
                    "GENETIC_ALGORITHM)",
                )
            if request.arm and request.arm != arm:
                raise InvalidArgument("arm", f"must be empty or {arm!r} for this algorithm")
        reward = request.reward
        if request.HasField("measurement"):
            if reward:
                raise InvalidArgument("reward", "must be 0 when measurement is given (the service computes it)")
            reward = measured_reward(request.measurement)
        state = self._book.report(arm_set, request.problem_class, arm, reward)
        return evolution_pb2.ReportOutcomeResponse(arms=self._arms(state, shared), reward=reward, arm=arm)

    # -- records --------------------------------------------------------------

    def _keep(self, record: RunRecord) -> None:
        with self._lock:
            self._records[record.run_id] = record
            while len(self._records) > self._retention:
                self._records.popitem(last=False)

    def get(self, run_id: str) -> RunRecord:
        with self._lock:
            record = self._records.get(run_id)
        if record is None:
            raise NotFound(f"run {run_id!r} is unknown (or no longer kept)")
        return record

    def _new(self, problem, algorithm, population_size, seed, server_side) -> tuple[RunRecord, int]:
        spec = problem_spec(problem, self._limits, server_side)
        configured, choice = self._choose(spec, algorithm, population_size, "algorithm")
        if spec.budget and configured.generation_cost > spec.budget:
            raise InvalidArgument(
                "problem.evaluation_budget",
                f"{spec.budget} is less than one generation of {choice.reason.split(':')[0]} "
                f"({configured.generation_cost} evaluations)",
            )
        init_key, key = jax.random.split(jax.random.PRNGKey(seed % 2**32))
        state = _init(configured.strategy)(init_key, configured.config)
        return RunRecord(uuid.uuid4().hex, spec, configured, choice, state, key), spec.budget

    def _outcome(self, record: RunRecord, best: float) -> float:
        """The run's reward, recorded in the bandit."""
        reward = 0.0
        if record.evaluations > 0:
            reward = bandit.improvement_reward(record.first_best, best, record.evaluations, REFERENCE_EVALUATIONS)
        arm = strategies.Portfolio.arm_name(record.configured.algorithm)
        assert arm is not None
        state = self._book.report(PORTFOLIO, record.spec.problem_class, arm, reward)
        record.choice.ClearField("arms")
        record.choice.arms.extend(self._arms(state))
        return reward

    # -- server-side runs -----------------------------------------------------

    def evolve(self, request: evolution_pb2.EvolveRequest, active: Callable[[], bool]) -> Iterator[Event]:
        """The choice, one GenerationSummary per generation, then the EvolveResponse."""
        record, budget = self._new(request.problem, request.algorithm, request.population_size, request.seed, True)
        cost = record.configured.generation_cost
        planned = min(request.generations, budget // cost)
        if planned > self._limits.generations:
            raise InvalidArgument("generations", f"at most {self._limits.generations} generations per run")
        if planned * record.spec.space.dim**2 > self._limits.work:
            raise InvalidArgument(
                "generations", f"{planned} generations of {record.spec.space.dim} dimensions exceed the service's work limit"
            )
        if not self._slots.acquire(blocking=False):
            raise ResourceExhausted("all run slots are busy; retry later")
        try:
            yield "choice", record.choice
            yield from self._run(record, request, budget, active)
        finally:
            self._slots.release()

    def _run(
        self, record: RunRecord, request: evolution_pb2.EvolveRequest, budget: int, active: Callable[[], bool]
    ) -> Iterator[Event]:
        generations, history = request.generations, []
        objective = benchmark_objective(record.spec)
        restarter = _Restarter(self._core, record, request.stagnation_patience, self._limits)
        exhausted = False
        while record.generation < generations:
            configured = record.configured
            affordable = (budget - record.evaluations) // configured.generation_cost
            if affordable == 0:
                exhausted = True
                break
            if not active():
                record.stop_reason = "the caller went away"
                break
            wanted = min(generations - record.generation, affordable)
            chunk = next(c for c in _CHUNKS if c <= wanted)
            record.key, key = jax.random.split(record.key)
            record.state, h = loop.advance(configured.strategy, record.state, key, configured.config, objective, chunk)
            best, mean, div, evals, generation_best = (np.asarray(a, np.float64) for a in h)
            evals = evals + restarter.spent_before
            if record.generation == 0:
                record.first_best = float(best[0])
            for i in range(chunk):
                summary = common_pb2.GenerationSummary(
                    generation=record.generation + i,
                    best_fitness=record.user_fitness(float(generation_best[i])),
                    mean_fitness=record.user_fitness(float(mean[i])),
                    diversity=common_pb2.DiversityStats(
                        rms_pairwise_distance=float(div[i]), restarts=restarter.restarts(record.state)
                    ),
                    evaluations=int(evals[i]),
                )
                history.append(summary)
                yield "generation", summary
            record.generation += chunk
            stop = restarter.after(best)
            if stop:
                record.stop_reason = stop
                break
        restarter.keep_best()
        if exhausted:
            record.stop_reason = _budget_reason(record.evaluations, budget, record.configured.generation_cost)
        elif not record.stop_reason:
            record.stop_reason = f"all {generations} generations ran"
        record.finished = True
        reward = self._outcome(record, restarter.best_f) if record.evaluations else 0.0
        self._keep(record)
        yield "result", evolution_pb2.EvolveResponse(
            run_id=record.run_id,
            choice=record.choice,
            best=evolution_pb2.Candidate(
                parameters=np.asarray(restarter.best_x, np.float64).tolist(),
                fitness=record.user_fitness(restarter.best_f),
            ),
            history=history,
            reward=reward,
            evaluations=record.evaluations,
            budget_exhausted=exhausted,
            stop_reason=record.stop_reason,
        )

    # -- ask/tell runs --------------------------------------------------------

    def start(self, request: evolution_pb2.StartRunRequest) -> evolution_pb2.Population:
        record, _ = self._new(request.problem, request.algorithm, request.population_size, request.seed, False)
        with record.lock:
            self._ask(record)
            self._keep(record)
            return self._population(record)

    def step(self, request: evolution_pb2.StepRequest) -> evolution_pb2.Population:
        record = self.get(request.run_id)
        with record.lock:
            active = self._pending_rows(record)
            if len(request.fitness) != active:
                raise FailedPrecondition(
                    f"run {record.run_id} asked {active} members, got {len(request.fitness)} fitness values"
                )
            return self._tell(record, np.asarray(request.fitness, np.float64))

    def screen_step(self, request: evolution_pb2.ScreenStepRequest) -> tuple[evolution_pb2.Population, int]:
        """Step with the fitness from the bin-packing twin; (next population, members screened)."""
        record = self.get(request.run_id)
        with record.lock:
            if record.spec.binpacking is None:
                raise FailedPrecondition(f"run {record.run_id}'s problem names no bin-packing workload")
            active = self._pending_rows(record)
            excess = self._screen.excess_pct(record.spec.binpacking, record.pending[:active])
            return self._tell(record, excess), active

    @staticmethod
    def _pending_rows(record: RunRecord) -> int:
        if record.finished or record.pending is None:
            raise FailedPrecondition(f"run {record.run_id} is finished: {record.stop_reason}")
        return Runs._active_rows(record)

    def _tell(self, record: RunRecord, told: np.ndarray) -> evolution_pb2.Population:
        """Tells the pending population its fitness (caller's or the twin's), asks the next."""
        active = len(told)
        engine = -told if record.spec.maximize else told
        padded = np.full(len(record.pending), np.inf)
        padded[:active] = engine
        configured = record.configured
        # The fitness keeps its own precision (the engine ranks before any
        # cast to the state's dtype; float64 where the process has x64).
        record.state = configured.strategy.tell(
            record.state, jnp.asarray(record.pending), jnp.asarray(padded), configured.config
        )
        if record.generation == 0:
            record.first_best = float(np.min(engine))
        members = record.pending[:active]
        record.last_summary = common_pb2.GenerationSummary(
            generation=record.generation,
            best_fitness=float(np.max(told) if record.spec.maximize else np.min(told)),
            mean_fitness=float(np.mean(told)),
            diversity=pairwise_diversity(members, _restarts(record.state)),
            evaluations=record.evaluations,
        )
        record.generation += 1
        budget = record.spec.budget
        if budget and record.evaluations + configured.generation_cost > budget:
            record.finished, record.pending = True, None
            record.stop_reason = _budget_reason(record.evaluations, budget, configured.generation_cost)
            self._outcome(record, float(record.state.best_f))
        else:
            self._ask(record)
        return self._population(record)

    def _ask(self, record: RunRecord) -> None:
        record.key, key = jax.random.split(record.key)
        population, record.state = record.configured.strategy.ask(key, record.state, record.configured.config)
        record.pending = np.asarray(population)

    @staticmethod
    def _active_rows(record: RunRecord) -> int:
        state = record.state
        return int(state.popsize) if isinstance(state, cmaes.CMAState) else len(record.pending)

    def _population(self, record: RunRecord) -> evolution_pb2.Population:
        population = evolution_pb2.Population(
            run_id=record.run_id,
            generation=record.generation,
            choice=record.choice,
            finished=record.finished,
            evaluations=record.evaluations,
            stop_reason=record.stop_reason,
        )
        if record.pending is not None:
            members = np.asarray(record.pending[: self._active_rows(record)], np.float64)
            population.members.extend(evolution_pb2.Candidate(parameters=m.tolist()) for m in members)
            population.diversity.CopyFrom(pairwise_diversity(members, _restarts(record.state)))
        if record.last_summary is not None:
            population.last_generation.CopyFrom(record.last_summary)
            population.best.CopyFrom(
                evolution_pb2.Candidate(
                    parameters=np.asarray(record.state.best_x, np.float64).tolist(),
                    fitness=record.user_fitness(float(record.state.best_f)),
                )
            )
        return population
