"""Sandbox: the real kernel, adversarial guests, validation and the module cache."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import wasmtime

import guests
from chimera.execution import workload
from chimera.execution.artifacts import kernel_wasm_bytes
from chimera.execution.cancel import CancelToken
from chimera.execution.sandbox import (
    CompiledModule,
    ExecStatus,
    InvalidModule,
    Limits,
    ModuleCache,
    Sandbox,
    validate_module,
)

BIG_FUEL = 10**15


def test_kernel_runs_and_genomes_differ(sandbox: Sandbox, kernel: CompiledModule) -> None:
    inp = workload.generate_instance(3, 200).encode()
    good = sandbox.run(kernel, workload.GOOD_GENOME, inp)
    bad = sandbox.run(kernel, workload.BAD_GENOME, inp)
    assert good.ok and bad.ok, (good.message, bad.message)
    assert good.output is not None and bad.output is not None
    q_good, q_bad = good.output.objectives[0], bad.output.objectives[0]
    assert 0 < q_bad < q_good <= 1
    assert q_good - q_bad > 0.2
    assert good.output.metrics["quality"] == q_good
    assert good.output.metrics["accepted_jobs"] + good.output.metrics["rejected_jobs"] == 200
    # More search effort costs measurably more fuel.
    assert good.fuel_consumed > 5 * bad.fuel_consumed
    assert good.memory_peak_bytes >= 65536 and good.latency_ms > 0
    assert len(good.module_digest) == 64


def test_kernel_is_deterministic(sandbox: Sandbox, kernel: CompiledModule) -> None:
    inp = workload.generate_instance(4, 120).encode()
    genome = (0.5, 2.0, 0.0, 1.0, 1.0, 1.0, 0.3, 0.5)
    a = sandbox.run(kernel, genome, inp)
    b = sandbox.run(kernel, genome, inp)
    assert a.ok and b.ok
    assert a.output == b.output
    assert a.fuel_consumed == b.fuel_consumed  # fuel is a repeatable cost


def test_effort_genes_move_fuel(sandbox: Sandbox, kernel: CompiledModule) -> None:
    inp = workload.generate_instance(5, 150).encode()
    fuels = []
    for look in (0.0, 0.5, 1.0):
        g = list(workload.GOOD_GENOME)
        g[6], g[7] = look, 0.0
        r = sandbox.run(kernel, g, inp)
        assert r.ok
        fuels.append(r.fuel_consumed)
    assert fuels[0] < fuels[1] < fuels[2]


def test_kernel_rejects_bad_params_and_input(sandbox: Sandbox, kernel: CompiledModule) -> None:
    r = sandbox.run(kernel, [1.0, 2.0], workload.generate_instance(1, 5).encode())
    assert r.status is ExecStatus.GUEST_ERROR and r.guest_status == 1
    assert "expected 8" in r.message
    r = sandbox.run(kernel, workload.GOOD_GENOME, b"\x00" * 9)
    assert r.status is ExecStatus.GUEST_ERROR and r.guest_status == 2
    r = sandbox.run(kernel, [float("nan")] * 8, b"")
    assert r.status is ExecStatus.GUEST_ERROR and "finite" in r.message


def test_kernel_too_little_fuel(sandbox: Sandbox, kernel: CompiledModule) -> None:
    inp = workload.generate_instance(6, 200).encode()
    r = sandbox.run(kernel, workload.GOOD_GENOME, inp, Limits(fuel=100_000))
    assert r.status is ExecStatus.FUEL_EXHAUSTED
    assert r.fuel_consumed == 100_000


def test_infinite_loop_stopped_by_fuel(sandbox: Sandbox) -> None:
    m = sandbox.compile(guests.INFINITE_LOOP)
    t0 = time.monotonic()
    r = sandbox.run(m, [], b"", Limits(fuel=5_000_000, timeout_ms=30_000))
    assert r.status is ExecStatus.FUEL_EXHAUSTED, r.message
    assert r.fuel_consumed == 5_000_000
    assert time.monotonic() - t0 < 5


def test_infinite_loop_stopped_by_epoch_deadline(sandbox: Sandbox) -> None:
    m = sandbox.compile(guests.INFINITE_LOOP)
    r = sandbox.run(m, [], b"", Limits(fuel=BIG_FUEL, timeout_ms=80))
    assert r.status is ExecStatus.DEADLINE_EXCEEDED, r.message
    assert 80 <= r.latency_ms < 2000
    assert r.fuel_consumed > 0


def test_fixed_deadline_fallback_without_hook() -> None:
    with Sandbox(tick_ms=2.0, use_deadline_hook=False) as sb:
        m = sb.compile(guests.INFINITE_LOOP)
        r = sb.run(m, [], b"", Limits(fuel=BIG_FUEL, timeout_ms=60))
        assert r.status is ExecStatus.DEADLINE_EXCEEDED, r.message
        assert 50 <= r.latency_ms < 2000
        assert "epoch interrupt" in r.message


def test_cancel_running_task(sandbox: Sandbox) -> None:
    m = sandbox.compile(guests.INFINITE_LOOP)
    token = CancelToken()
    timer = threading.Timer(0.05, token.cancel, args=("operator request",))
    timer.start()
    r = sandbox.run(m, [], b"", Limits(fuel=BIG_FUEL, timeout_ms=20_000), token)
    timer.join()
    assert r.status is ExecStatus.CANCELLED, r.message
    assert r.latency_ms < 5_000
    pre = CancelToken()
    pre.cancel()
    assert sandbox.run(m, [], b"", cancel=pre).status is ExecStatus.CANCELLED


def test_token_deadline_bounds_run(sandbox: Sandbox) -> None:
    m = sandbox.compile(guests.INFINITE_LOOP)
    token = CancelToken(deadline=time.monotonic() + 0.05)
    r = sandbox.run(m, [], b"", Limits(fuel=BIG_FUEL, timeout_ms=20_000), token)
    assert r.status is ExecStatus.DEADLINE_EXCEEDED


@pytest.mark.parametrize("bomb", [guests.MEMORY_BOMB_TRAP, guests.MEMORY_BOMB_SPIN])
def test_memory_bomb_stopped_at_limit(sandbox: Sandbox, bomb: bytes) -> None:
    m = sandbox.compile(bomb)
    limit = 4 * 1024 * 1024
    r = sandbox.run(m, [], b"", Limits(fuel=20_000_000, memory_bytes=limit))
    assert r.status is ExecStatus.MEMORY_LIMIT, r.message
    assert limit - 4 * 65536 < r.memory_peak_bytes <= limit


def test_initial_memory_over_limit(sandbox: Sandbox) -> None:
    m = sandbox.compile(guests.HUGE_INITIAL_MEMORY)  # 128 MiB minimum
    r = sandbox.run(m, [], b"", Limits(memory_bytes=16 * 1024 * 1024))
    assert r.status is ExecStatus.MEMORY_LIMIT, r.message
    assert r.memory_peak_bytes == 0


def test_kernel_input_larger_than_memory_limit(sandbox: Sandbox, kernel: CompiledModule) -> None:
    inp = workload.generate_instance(1, 60_000).encode()  # ~1.4 MB of input
    r = sandbox.run(kernel, workload.BAD_GENOME, inp, Limits(memory_bytes=2 * 1024 * 1024))
    assert r.status is ExecStatus.MEMORY_LIMIT, r.message


def test_trap_fails_only_that_task(sandbox: Sandbox) -> None:
    trap = sandbox.compile(guests.UNREACHABLE)
    ok = sandbox.compile(guests.OK_GUEST)
    results = [sandbox.run(m, [], b"") for m in (ok, trap, ok, trap, ok)]
    assert [r.status for r in results] == [
        ExecStatus.OK,
        ExecStatus.TRAP,
        ExecStatus.OK,
        ExecStatus.TRAP,
        ExecStatus.OK,
    ]
    assert "UNREACHABLE" in results[1].message
    assert results[0].output is not None and results[0].output.metrics["marker"] == 1.0
    r = sandbox.run(sandbox.compile(guests.STACK_OVERFLOW), [], b"")
    assert r.status is ExecStatus.TRAP and "STACK_OVERFLOW" in r.message


def test_guest_abi_violations(sandbox: Sandbox) -> None:
    r = sandbox.run(sandbox.compile(guests.GUEST_FAILS), [], b"x")
    assert r.status is ExecStatus.GUEST_ERROR
    assert r.guest_status == 2 and "INVALID_INPUT: input rejected" in r.message
    r = sandbox.run(sandbox.compile(guests.BAD_RESULT), [], b"")
    assert r.status is ExecStatus.GUEST_ERROR and "CHR1" in r.message
    r = sandbox.run(sandbox.compile(guests.WRONG_VERSION), [], b"")
    assert r.status is ExecStatus.GUEST_ERROR and "version 7" in r.message


def test_validate_rejects_forbidden_import() -> None:
    with pytest.raises(InvalidModule, match="'env.host_fn' is not allowed"):
        validate_module(guests.FORBIDDEN_IMPORT)
    # The allow-list is explicit: naming the import lets validation pass.
    validate_module(guests.FORBIDDEN_IMPORT, allowed_imports={"env.host_fn"})


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "needs 8"),
        (b"\x7fELF\x01\x00\x00\x00", "bad magic"),
        (b"\0asm\x0d\x00\x01\x00", "unsupported binary version"),
        (b"\0asm\x01\0\0\0\x01\xff\xff", "malformed module"),
        (guests.OK_GUEST[:-3], "malformed module"),
    ],
)
def test_validate_rejects_bad_bytes(data: bytes, needle: str) -> None:
    with pytest.raises(InvalidModule, match=needle):
        validate_module(data)


def test_validate_requires_abi_exports() -> None:
    with pytest.raises(InvalidModule, match="memory"):
        validate_module(wasmtime.wat2wasm("(module)"))
    no_run = wasmtime.wat2wasm(
        '(module (memory (export "memory") 1)'
        ' (func (export "chimera_abi_version") (result i32) (i32.const 1)))'
    )
    with pytest.raises(InvalidModule, match="chimera_alloc"):
        validate_module(no_run)
    with pytest.raises(InvalidModule, match="limit"):
        validate_module(guests.OK_GUEST, max_bytes=10)
    assert validate_module(kernel_wasm_bytes()) is not None
    with pytest.raises(InvalidModule, match="must be bytes"):
        validate_module("not bytes")  # type: ignore[arg-type]


def test_sandbox_compile_rejects(sandbox: Sandbox) -> None:
    with pytest.raises(InvalidModule):
        sandbox.compile(guests.FORBIDDEN_IMPORT)
    with pytest.raises(InvalidModule):
        sandbox.compile(b"garbage!")


def test_module_cache_compiles_once_and_persists(tmp_path: Path) -> None:
    engine_cfg = wasmtime.Config()
    engine_cfg.consume_fuel = True
    engine_cfg.epoch_interruption = True
    engine = wasmtime.Engine(engine_cfg)
    cache = ModuleCache(engine, cache_dir=tmp_path)
    wasm = guests.marker_guest(3.0)
    threads = [threading.Thread(target=cache.get, args=(wasm,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    a = cache.get(wasm)
    assert cache.compiles == 1 and len(cache) == 1 and cache.hits >= 1
    files = list(tmp_path.glob("*.cwasm"))
    assert [f.name for f in files] == [f"{a.digest}.cwasm"]
    # A new cache (a restarted process) loads the artifact instead of compiling.
    again = ModuleCache(engine, cache_dir=tmp_path)
    b = again.get(wasm)
    assert again.compiles == 0 and again.disk_hits == 1 and b.digest == a.digest
    # A corrupt artifact is replaced by a fresh compile.
    files[0].write_bytes(b"corrupt")
    third = ModuleCache(engine, cache_dir=tmp_path)
    third.get(wasm)
    assert third.compiles == 1 and files[0].read_bytes() != b"corrupt"


def test_deserialized_module_runs(tmp_path: Path) -> None:
    wasm = guests.marker_guest(5.0)
    with Sandbox(cache_dir=tmp_path) as first:
        first.compile(wasm)
    with Sandbox(cache_dir=tmp_path) as second:
        m = second.compile(wasm)
        assert second.modules.disk_hits == 1
        r = second.run(m, [], b"")
        assert r.ok and r.output is not None and r.output.metrics["marker"] == 5.0


def test_limits_validation() -> None:
    with pytest.raises(ValueError):
        Limits(fuel=0)
    with pytest.raises(ValueError):
        Limits(memory_bytes=100)
    with pytest.raises(ValueError):
        Limits(timeout_ms=float("nan"))


def test_ticker_stops_cleanly() -> None:
    sb = Sandbox(tick_ms=1.0)
    assert sb.ticker.running
    time.sleep(0.02)
    sb.close()
    assert not sb.ticker.running
    assert sb.ticker.ticks > 0
