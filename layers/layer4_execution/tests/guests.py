"""WAT guests that speak the Chimera ABI, for adversarial and fast tests.

Each builder returns wasm bytes whose ``chimera_run`` body is chosen by the
test: a fixed good result, an infinite loop, a memory bomb, a trap, ...
"""

from __future__ import annotations

import wasmtime

from chimera.wasm.guest import GuestResult, encode_result

RESULT_ADDR = 16


def _wat_bytes(data: bytes) -> str:
    return "".join(f"\\{b:02x}" for b in data)


def abi_guest(
    run_body: str = "(i32.const 0)",
    *,
    result: bytes | None = None,
    extra: str = "",
    imports: str = "",
    memory_pages: int = 1,
    abi_version: int = 1,
) -> bytes:
    """A module implementing the ABI with a bump allocator and a static result.

    ``run_body`` is the body of ``chimera_run`` (params: $pp $pl $ip $il; must
    leave an i32 status). ``result`` (default: one metric ``marker`` = 1.0)
    is placed at a fixed address.
    """
    if result is None:
        result = encode_result(GuestResult((1.0,), {"marker": 1.0}))
    wat = f"""
(module
  {imports}
  (memory (export "memory") {memory_pages})
  (global $bump (mut i32) (i32.const 4096))
  (data (i32.const {RESULT_ADDR}) "{_wat_bytes(result)}")
  (func (export "chimera_abi_version") (result i32) (i32.const {abi_version}))
  (func (export "chimera_alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (block $done
      (loop $grow
        (br_if $done
          (i32.le_u (i32.add (local.get $p) (local.get $n))
                    (i32.mul (memory.size) (i32.const 65536))))
        (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1))
          (then (return (i32.const 0))))
        (br $grow)))
    (global.set $bump (i32.add (i32.add (local.get $p) (local.get $n)) (i32.const 8)))
    (local.get $p))
  (func (export "chimera_run") (param $pp i32) (param $pl i32) (param $ip i32) (param $il i32)
    (result i32)
    {run_body})
  (func (export "chimera_result_ptr") (result i32) (i32.const {RESULT_ADDR}))
  (func (export "chimera_result_len") (result i32) (i32.const {len(result)}))
  {extra}
)
"""
    return bytes(wasmtime.wat2wasm(wat))


def marker_guest(marker: float) -> bytes:
    """Returns objective [marker] and metric marker=marker (distinguishes versions)."""
    return abi_guest(result=encode_result(GuestResult((marker,), {"marker": marker})))


OK_GUEST = abi_guest()
INFINITE_LOOP = abi_guest("(loop $spin (br $spin)) (i32.const 0)")
# Grows until refused, then aborts like a Rust guest's failed allocation.
MEMORY_BOMB_TRAP = abi_guest(
    "(loop $g (br_if $g (i32.ne (memory.grow (i32.const 4)) (i32.const -1)))) unreachable"
)
# Grows until refused and keeps spinning (never traps by itself).
MEMORY_BOMB_SPIN = abi_guest(
    "(loop $g (drop (memory.grow (i32.const 4))) (br $g)) (i32.const 0)"
)
UNREACHABLE = abi_guest("unreachable")
GUEST_FAILS = abi_guest("(i32.const 2)", result=b"input rejected: too short")
BAD_RESULT = abi_guest("(i32.const 0)", result=b"XXXXnot a record")
WRONG_VERSION = abi_guest(abi_version=7)
STACK_OVERFLOW = abi_guest(
    "(call $recurse) (i32.const 0)",
    extra="(func $recurse (call $recurse))",
)
FORBIDDEN_IMPORT = abi_guest(imports='(import "env" "host_fn" (func $host_fn))')
HUGE_INITIAL_MEMORY = abi_guest(memory_pages=2048)
