"""Chimera's JAX optimisation engine, shared by layers 6 (Evolution) and 7 (Genetics).

Every strategy is an ask/tell triple of pure functions over pytree state
(`chimera.optim.loop`), minimising a batch objective `f(population) -> fitness`:

- `ga`: tournament GA (single-point / uniform / BLX-alpha, Gaussian mutation,
  self-adaptation, elitism, bounds, integer genes);
- `cmaes`: CMA-ES with pycma-style termination and IPOP/BIPOP restarts;
- `snes`: separable natural evolution strategy;
- `de`: differential evolution (rand/1/bin, current-to-best/1/bin);
- `bandit`: UCB1 hyper-heuristic over (strategy, settings) arms, JSON state.

`objectives` holds the test functions, the host-callback wrapper and the
agent fitness; `sharding` lays populations over all devices; `progress`
reports long runs.
"""
