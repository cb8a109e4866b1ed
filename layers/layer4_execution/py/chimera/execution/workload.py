"""The execution kernel's task input and genome, for hosts that build tasks.

Mirrors ``layers/layer4_execution/rust/src/instance.rs`` and ``genome.rs``.
Task input is a little-endian f64 array::

    [1.0 (format version), capacity C > 0, machine budget M (integer >= 1),
     then per job in arrival order: size (0 < size <= C), duration > 0, priority >= 0]

:func:`generate_instance` reproduces the Rust generator bit for bit (SplitMix64
and integer arithmetic only), so a Python caller and a Rust test describe the
same instance with the same arguments.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from chimera.wasm.guest import AbiError, decode_f64s, encode_f64s

INPUT_VERSION = 1.0
MAX_JOBS = 100_000
MAX_MACHINES = 100_000
PRIORITY_CLASSES = (1, 25, 50, 75, 100)

#: Genome layout (index order); see ``genome.rs`` for each field's effect.
GENOME_FIELDS = (
    "w_fit",
    "w_hours",
    "w_fill",
    "w_priority",
    "w_size",
    "open_bias",
    "lookahead",
    "effort",
)
GENOME_LEN = len(GENOME_FIELDS)
#: Reference genomes, identical to the Rust constants.
GOOD_GENOME = (-0.3, 1.4, -1.6, 0.0, 4.4, 4.0, 0.6, 1.0)
BAD_GENOME = (-2.0, -3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)

_MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class Job:
    """One job: capacity it occupies, how long it runs, how much it matters."""

    size: float
    duration: float
    priority: float


@dataclass(frozen=True)
class Instance:
    """Jobs to place on at most ``max_machines`` machines of ``capacity``."""

    capacity: float
    max_machines: int
    jobs: tuple[Job, ...]

    def encode(self) -> bytes:
        """Task input bytes for the kernel (validated first)."""
        _validate(self)
        values = [INPUT_VERSION, self.capacity, float(self.max_machines)]
        for j in self.jobs:
            values += [j.size, j.duration, j.priority]
        return encode_f64s(values)


def _validate(inst: Instance) -> None:
    if not (math.isfinite(inst.capacity) and inst.capacity > 0):
        raise AbiError(f"capacity must be finite and > 0, got {inst.capacity}")
    if not 1 <= inst.max_machines <= MAX_MACHINES:
        raise AbiError(f"max_machines must be in 1..={MAX_MACHINES}, got {inst.max_machines}")
    if len(inst.jobs) > MAX_JOBS:
        raise AbiError(f"{len(inst.jobs)} jobs exceed the limit of {MAX_JOBS}")
    for k, j in enumerate(inst.jobs):
        if not (math.isfinite(j.size) and 0 < j.size <= inst.capacity):
            raise AbiError(f"job {k}: size must be in (0, capacity], got {j.size}")
        if not (math.isfinite(j.duration) and j.duration > 0):
            raise AbiError(f"job {k}: duration must be finite and > 0, got {j.duration}")
        if not (math.isfinite(j.priority) and j.priority >= 0):
            raise AbiError(f"job {k}: priority must be finite and >= 0, got {j.priority}")


def decode_instance(data: bytes) -> Instance:
    """Parses task input bytes (same rules as the kernel)."""
    v = decode_f64s(data)
    if len(v) < 3 or (len(v) - 3) % 3:
        raise AbiError(f"input: {len(v)} values; expected 3 header values plus 3 per job")
    if v[0] != INPUT_VERSION:
        raise AbiError(f"input[0] (version) is {v[0]}, expected 1")
    if not (math.isfinite(v[2]) and v[2] == int(v[2])):
        raise AbiError(f"input[2] (max_machines) must be an integer, got {v[2]}")
    jobs = tuple(Job(v[i], v[i + 1], v[i + 2]) for i in range(3, len(v), 3))
    inst = Instance(v[1], int(v[2]), jobs)
    _validate(inst)
    return inst


class SplitMix64:
    """SplitMix64, bit-identical to the Rust generator."""

    def __init__(self, seed: int) -> None:
        self.state = seed & _MASK64

    def next_u64(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        return z ^ (z >> 31)

    def range(self, lo: int, hi: int) -> int:
        """A value in ``lo..=hi``."""
        return lo + self.next_u64() % (hi - lo + 1)


def generate_instance(
    seed: int, n_jobs: int, capacity: int = 100, budget_percent: int = 110
) -> Instance:
    """Reproducible instance; the machine budget is ``budget_percent`` of the volume bound."""
    cap = max(capacity, 1)
    rng = SplitMix64(seed)
    jobs: list[Job] = []
    total = 0
    for _ in range(n_jobs):
        r = rng.range(0, 99)
        if r < 50:
            pct = rng.range(5, 35)
        elif r < 80:
            pct = rng.range(36, 60)
        else:
            pct = rng.range(61, 90)
        size = min(max(pct * cap // 100, 1), cap)
        r = rng.range(0, 99)
        if r < 60:
            duration = rng.range(1, 10)
        elif r < 90:
            duration = rng.range(11, 50)
        else:
            duration = rng.range(51, 120)
        priority = PRIORITY_CLASSES[rng.range(0, 4)]
        total += size
        jobs.append(Job(float(size), float(duration), float(priority)))
    denom = 100 * cap
    budget = (total * budget_percent + denom - 1) // denom
    return Instance(float(cap), min(max(budget, 1), MAX_MACHINES), tuple(jobs))


def genome_dict(genome: Sequence[float]) -> dict[str, float]:
    """Names a genome's values (for logs and KPI metadata)."""
    if len(genome) != GENOME_LEN:
        raise AbiError(f"genome must have {GENOME_LEN} values ({', '.join(GENOME_FIELDS)})")
    return dict(zip(GENOME_FIELDS, (float(g) for g in genome)))
