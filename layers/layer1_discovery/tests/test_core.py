"""The discovery core through its real WASM module (wasmtime), checked
against independent Python references."""

from __future__ import annotations

import math
import statistics

import pytest
import wasmtime

from chimera.discovery.core import DiscoveryCore, Rule
from chimera.wasm import CoreError, Reader, WireError, Writer

ABOVE, BELOW = 1, 2
INFO, WARNING, CRITICAL = 1, 2, 3


@pytest.fixture(scope="module")
def core() -> DiscoveryCore:
    return DiscoveryCore.load()


def type7(values: list[float], p: float) -> float:
    """NumPy's default (linear) percentile, written out."""
    s = sorted(values)
    h = (len(s) - 1) * p / 100
    lo = math.floor(h)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (h - lo) * (s[hi] - s[lo])


def test_window_stats_match_python_reference(core: DiscoveryCore) -> None:
    values = [3.0, 1.5, 9.25, 4.0, 4.0, 7.5, 0.0, 12.0, 5.5, 2.25, 8.0]
    stats = core.window_stats({"x": values}, alpha=0.3)["x"]
    assert stats.count == len(values)
    assert stats.mean == pytest.approx(statistics.fmean(values))
    assert stats.stddev == pytest.approx(statistics.pstdev(values))
    assert (stats.min, stats.max, stats.last) == (0.0, 12.0, 8.0)
    for p, got in ((50, stats.p50), (95, stats.p95), (99, stats.p99)):
        assert got == pytest.approx(type7(values, p))
    ewma = values[0]
    for v in values[1:]:
        ewma = 0.3 * v + 0.7 * ewma
    assert stats.ewma == pytest.approx(ewma)


def test_window_keeps_only_the_most_recent_values(core: DiscoveryCore) -> None:
    out = core.window_stats({"a": [100.0, 1.0, 2.0, 3.0], "b": [7.0]}, alpha=1.0, window=3)
    assert out["a"].count == 3
    assert out["a"].mean == pytest.approx(2.0)
    assert out["a"].ewma == 3.0
    assert out["b"].stddev == 0.0
    assert core.window_stats({}, alpha=0.5) == {}


def test_window_errors_name_the_series(core: DiscoveryCore) -> None:
    with pytest.raises(CoreError) as err:
        core.window_stats({"cpu": [1.0, math.nan]}, alpha=0.5)
    assert err.value.status == 3
    assert err.value.details[0] == "cpu"
    with pytest.raises(CoreError, match="alpha"):
        core.window_stats({"cpu": [1.0]}, alpha=0.0)


def test_thresholds_raise_the_most_severe_rung(core: DiscoveryCore) -> None:
    rules = [
        Rule("cpu", ABOVE, 80.0, WARNING),
        Rule("cpu", ABOVE, 95.0, CRITICAL),
        Rule("free", BELOW, 10.0, INFO),
    ]
    obs = [("cpu", 97.0, "percent"), ("cpu", 85.0, "percent"), ("free", 5.0, ""), ("cpu", 80.0, "")]
    alerts = core.evaluate(obs, rules)
    got = [(a.observation, a.threshold, a.severity) for a in alerts]
    assert got == [(0, 1, CRITICAL), (1, 0, WARNING), (2, 2, INFO)]
    assert alerts[0].message == "cpu 97.0 percent above 95.0 (critical)"
    assert alerts[2].comparison == BELOW


def test_bad_threshold_is_rejected_with_its_index(core: DiscoveryCore) -> None:
    with pytest.raises(CoreError) as err:
        core.evaluate([], [Rule("a", ABOVE, 1.0, INFO), Rule("b", 7, 1.0, INFO)])
    assert err.value.status == 2
    assert err.value.details[0] == "1"
    with pytest.raises(CoreError, match="not finite"):
        core.evaluate([], [Rule("a", ABOVE, math.inf, INFO)])


def test_malformed_requests_and_responses_fail_loudly(core: DiscoveryCore) -> None:
    module = core._module  # the raw ABI: a truncated request is status 1
    with pytest.raises(CoreError) as err:
        module.call("discovery_evaluate", b"\x01")
    assert err.value.status == 1
    assert "truncated" in err.value.message
    r = Reader(Writer().u32(1).to_bytes() + b"x")
    assert r.u32() == 1
    with pytest.raises(WireError, match="trailing"):
        r.finish()
    with pytest.raises(WireError, match="truncated"):
        Reader(b"\x01\x00").u32()


def test_module_is_small_import_free_and_speaks_abi_v1() -> None:
    from chimera.discovery import artifacts

    wasm = artifacts.locate(artifacts.CORE_WASM).read_bytes()
    assert wasm[:4] == b"\0asm" and len(wasm) < 256 * 1024  # release build: LTO, stripped
    module = wasmtime.Module(wasmtime.Engine(), wasm)
    assert list(module.imports) == []
    exports = {e.name for e in module.exports}
    assert {"memory", "chimera_core_alloc", "chimera_core_result_ptr", "chimera_core_result_len"} <= exports
