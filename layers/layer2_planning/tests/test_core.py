"""The planning core through its real WASM module (wasmtime)."""

from __future__ import annotations

import pytest
import wasmtime

from chimera.planning.core import (
    STATUS_BAD_RISK,
    STATUS_CYCLE,
    STATUS_DUPLICATE_ID,
    STATUS_UNKNOWN_DEPENDENCY,
    CoreError,
    CoreTask,
    PlanningCore,
    Requirements,
)


@pytest.fixture(scope="module")
def core() -> PlanningCore:
    return PlanningCore.load()


def task(tid: str, ms: int, *deps: str, layer: int = 4, cpu: float = 0.0) -> CoreTask:
    return CoreTask(tid, ms, 50, layer, Requirements(cpu_cores=cpu), tuple(deps))


# a(3) -> b(2) -> d(4); a -> c(1) -> d; e(1) alone (the textbook network).
NETWORK = [
    task("a", 3000),
    task("b", 2000, "a"),
    task("c", 1000, "a"),
    task("d", 4000, "b", "c"),
    task("e", 1000, layer=5),
]


def test_critical_path_and_slack(core: PlanningCore) -> None:
    s = core.schedule(NETWORK)
    assert s.makespan_ms == 9000
    assert [NETWORK[i].id for i in s.critical_path] == ["a", "b", "d"]
    assert [t.start for t in s.timings] == [0, 3000, 3000, 5000, 0]
    assert [t.slack for t in s.timings] == [0, 0, 1000, 0, 8000]
    assert [t.latest_start for t in s.timings] == [0, 3000, 4000, 5000, 8000]
    assert [NETWORK[i].id for i in s.timeline_order] == ["a", "e", "b", "c", "d"]
    assert s.parallel_limit == 0


def test_parallel_limit_from_cores_serialises(core: PlanningCore) -> None:
    s = core.schedule(NETWORK, cores=1.0, memory_bytes=1 << 30)
    assert s.parallel_limit == 1
    assert s.makespan_ms == 11000
    for i, t in enumerate(NETWORK):
        for dep in t.deps:
            j = next(k for k, u in enumerate(NETWORK) if u.id == dep)
            assert s.timings[i].start >= s.timings[j].end
    assert all(t.cpu_cores == 1.0 for t in s.timings)
    assert all(t.memory_bytes == 1 << 30 for t in s.timings)
    assert s.overall_peak.cpu_cores == 1.0


def test_sizing_shares_cores_with_the_level(core: PlanningCore) -> None:
    workers = [task(f"w{i}", 10, "root") for i in range(4)]
    tasks = [task("root", 10), *workers, task("fixed", 10, cpu=3)]
    s = core.schedule(tasks, cores=16.0)
    assert s.timings[0].cpu_cores == 8.0  # level 0: root and fixed
    assert [t.cpu_cores for t in s.timings[1:5]] == [4.0] * 4
    assert s.timings[5].cpu_cores == 3.0  # the caller's value is kept
    assert s.layer_peaks[4].cpu_cores == 16.0  # four workers at once
    assert s.overall_peak.cpu_cores == 16.0


def test_graph_errors_carry_details(core: PlanningCore) -> None:
    with pytest.raises(CoreError) as err:
        core.schedule([task("x", 1), task("p", 1, "q"), task("q", 1, "p")])
    assert err.value.status == STATUS_CYCLE
    assert err.value.details == ("p", "q")
    with pytest.raises(CoreError) as err:
        core.schedule([task("a", 1, "ghost")])
    assert err.value.status == STATUS_UNKNOWN_DEPENDENCY
    assert err.value.details == ("0", "0", "a", "ghost")
    with pytest.raises(CoreError) as err:
        core.schedule([task("a", 1), task("a", 1)])
    assert err.value.status == STATUS_DUPLICATE_ID


def test_risks_are_scored_and_ranked(core: PlanningCore) -> None:
    ranked = core.score_risks([(0.2, 2), (1.0, 5), (0.5, 3)])
    assert [(r.index, r.score, r.level) for r in ranked] == [(1, 5.0, 4), (2, 1.5, 2), (0, 0.4, 1)]
    with pytest.raises(CoreError) as err:
        core.score_risks([(0.5, 6)])
    assert err.value.status == STATUS_BAD_RISK
    with pytest.raises(CoreError):
        core.score_risks([(1.5, 1)])


def test_large_graph_is_fast(core: PlanningCore) -> None:
    tasks = [task(f"t{i}", 10 + i % 7, *([f"t{i - 1}"] if i % 10 else [])) for i in range(5000)]
    s = core.schedule(tasks, cores=8.0)
    assert len(s.timings) == 5000
    assert s.parallel_limit == 8


def test_module_is_small_import_free_and_speaks_abi_v1() -> None:
    from chimera.planning import artifacts

    wasm = artifacts.locate(artifacts.CORE_WASM).read_bytes()
    assert wasm[:4] == b"\0asm" and len(wasm) < 256 * 1024  # release build: LTO, stripped
    module = wasmtime.Module(wasmtime.Engine(), wasm)
    assert list(module.imports) == []
    exports = {e.name for e in module.exports}
    assert {"memory", "chimera_core_alloc", "chimera_core_result_ptr", "chimera_core_result_len"} <= exports
