"""Typed access to the discovery Rust core through its WASM module.

Window statistics and threshold evaluation are computed by the core
(``layers/layer1_discovery/rust``), not here, so the native tests of the core
cover the arithmetic the service serves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from chimera.discovery import artifacts
from chimera.wasm import CoreModule, Reader, Writer

__all__ = ["CoreAlert", "DiscoveryCore", "Rule", "WindowStats"]

OPERATIONS = ("discovery_window_stats", "discovery_evaluate")


@dataclass(frozen=True)
class WindowStats:
    """Statistics of one series' window (see the core's ``window`` module)."""

    count: int
    mean: float
    min: float
    max: float
    stddev: float
    ewma: float
    p50: float
    p95: float
    p99: float
    last: float

    def as_dict(self) -> dict[str, float]:
        return {
            "mean": self.mean,
            "min": self.min,
            "max": self.max,
            "stddev": self.stddev,
            "ewma": self.ewma,
            "p50": self.p50,
            "p95": self.p95,
            "p99": self.p99,
        }


@dataclass(frozen=True)
class Rule:
    """A threshold: comparison 1 = above, 2 = below; severity 1..3 (proto numbers)."""

    metric: str
    comparison: int
    value: float
    severity: int


@dataclass(frozen=True)
class CoreAlert:
    """A crossed threshold, by position in the evaluated lists."""

    observation: int
    threshold: int
    severity: int
    comparison: int
    message: str


class DiscoveryCore:
    """The compiled discovery core; thread-safe (each call gets its own instance)."""

    def __init__(self, module: CoreModule) -> None:
        self._module = module

    @classmethod
    def load(cls, path: Path | None = None) -> DiscoveryCore:
        wasm = Path(path) if path is not None else artifacts.locate(artifacts.CORE_WASM)
        return cls(CoreModule.from_file(wasm, OPERATIONS))

    def window_stats(
        self, series: Mapping[str, Sequence[float]], alpha: float, window: int = 0
    ) -> dict[str, WindowStats]:
        """Statistics of the last ``window`` values (0 = all) of each non-empty series."""
        items = [(name, list(values)) for name, values in series.items() if len(values) > 0]
        w = Writer().f64(alpha).u32(window).u32(len(items))
        for name, values in items:
            w.string(name).u32(len(values))
            for v in values:
                w.f64(float(v))
        r = Reader(self._module.call("discovery_window_stats", w.to_bytes()))
        out: dict[str, WindowStats] = {}
        for _ in range(r.u32()):
            name = r.string()
            count = r.u32()
            out[name] = WindowStats(count, *(r.f64() for _ in range(9)))
        r.finish()
        return out

    def evaluate(
        self, observations: Sequence[tuple[str, float, str]], rules: Sequence[Rule]
    ) -> list[CoreAlert]:
        """Alerts ``rules`` raise over ``(metric, value, unit)`` observations, most severe first."""
        w = Writer().u32(len(rules))
        for rule in rules:
            w.string(rule.metric).u8(rule.comparison).f64(rule.value).u8(rule.severity)
        w.u32(len(observations))
        for metric, value, unit in observations:
            w.string(metric).f64(value).string(unit)
        r = Reader(self._module.call("discovery_evaluate", w.to_bytes()))
        alerts = [
            CoreAlert(r.u32(), r.u32(), r.u8(), r.u8(), r.string()) for _ in range(r.u32())
        ]
        r.finish()
        return alerts
