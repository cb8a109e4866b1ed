"""chimera.wasm against a real core module: rust/wasm_export's echo face
crate, built for wasm32 by Bazel and run with wasmtime."""

from __future__ import annotations

import math

import pytest
import wasmtime

from chimera.wasm import CORE_ABI_VERSION, CoreError, CoreModule, Reader, WireError, Writer
from chimera.wasm.artifacts import Artifact, locate

ECHO = Artifact("rust/wasm_export/echo_module.wasm", "CHIMERA_WASM_ECHO_MODULE")
OPERATIONS = ("echo_upper", "echo_refuse")


@pytest.fixture(scope="module")
def wasm() -> bytes:
    return locate(ECHO).read_bytes()


@pytest.fixture(scope="module")
def echo(wasm: bytes) -> CoreModule:
    return CoreModule(wasm, OPERATIONS)


def test_call_round_trips_through_the_guest(echo: CoreModule) -> None:
    for text in ("héllo", "", "x" * 70_000):
        r = Reader(echo.call("echo_upper", Writer().string(text).to_bytes()))
        assert r.string() == text.upper()
        assert r.u64() == len(text.encode("utf-8"))
        r.finish()


def test_non_zero_status_raises_core_error_with_details(echo: CoreModule) -> None:
    with pytest.raises(CoreError) as err:
        echo.call("echo_refuse", Writer().strings(["a", "bc"]).to_bytes())
    assert (err.value.status, err.value.message, err.value.details) == (7, "refused", ("a", "bc"))
    assert str(err.value) == "status 7: refused"


def test_malformed_requests_are_status_1_naming_the_problem(echo: CoreModule) -> None:
    with pytest.raises(CoreError) as err:
        echo.call("echo_upper", b"\x05\x00\x00\x00ab")
    assert err.value.status == 1 and "truncated" in err.value.message
    with pytest.raises(CoreError, match="trailing"):
        echo.call("echo_upper", Writer().string("a").u8(0).to_bytes())
    with pytest.raises(CoreError, match="exceeds"):
        echo.call("echo_refuse", Writer().u32(1000).to_bytes())


def test_module_exports_exactly_the_core_abi_functions(wasm: bytes) -> None:
    module = wasmtime.Module(wasmtime.Engine(), wasm)
    assert list(module.imports) == []
    assert "memory" in {e.name for e in module.exports}
    # Besides memory, rustc exports only globals (__heap_base, __data_end).
    assert {e.name for e in module.exports if isinstance(e.type, wasmtime.FuncType)} == {
        "chimera_core_abi_version",
        "chimera_core_alloc",
        "chimera_core_result_ptr",
        "chimera_core_result_len",
        *OPERATIONS,
    }
    assert CORE_ABI_VERSION == 1


def _module_wat(version: int, imports: str = "") -> bytes:
    fns = "".join(
        f'(func (export "{n}") (result i32) i32.const {v})'
        for n, v in (
            ("chimera_core_abi_version", version),
            ("chimera_core_result_ptr", 16),
            ("chimera_core_result_len", 0),
        )
    )
    return bytes(
        wasmtime.wat2wasm(
            f"""(module {imports} (memory (export "memory") 1) {fns}
            (func (export "chimera_core_alloc") (param i32) (result i32) i32.const 16)
            (func (export "op") (param i32 i32) (result i32) i32.const 0))"""
        )
    )


def test_rejects_modules_that_break_the_abi(wasm: bytes) -> None:
    assert CoreModule(_module_wat(1), ["op"]).call("op", b"abc") == b""
    with pytest.raises(ValueError, match=r"lacks exports \['missing_op'\]"):
        CoreModule(wasm, ["missing_op"])
    with pytest.raises(ValueError, match="version 2"):
        CoreModule(_module_wat(2), ["op"])
    with pytest.raises(ValueError, match="must not import"):
        CoreModule(_module_wat(1, '(import "env" "f" (func))'), ["op"])


def test_wire_round_trips_every_type() -> None:
    data = (
        Writer()
        .u8(7)
        .u32(0xDEADBEEF)
        .u64(2**64 - 1)
        .f64(-1.5)
        .f64(math.inf)
        .string("héllo")
        .raw(b"\x00\xff")
        .strings(["a", ""])
        .to_bytes()
    )
    r = Reader(data)
    assert (r.u8(), r.u32(), r.u64()) == (7, 0xDEADBEEF, 2**64 - 1)
    assert (r.f64(), r.f64()) == (-1.5, math.inf)
    assert (r.string(), r.raw(), r.strings()) == ("héllo", b"\x00\xff", ["a", ""])
    r.finish()


def test_wire_layout_is_little_endian_and_length_prefixed() -> None:
    assert Writer().u32(1).string("ab").to_bytes() == bytes([1, 0, 0, 0, 2, 0, 0, 0]) + b"ab"


def test_reader_rejects_truncation_and_trailing_bytes() -> None:
    with pytest.raises(WireError, match="truncated"):
        Reader(b"\x01\x00").u32()
    with pytest.raises(WireError, match="truncated"):
        Reader(b"\x05\x00\x00\x00ab").string()
    r = Reader(Writer().u32(1).to_bytes() + b"x")
    assert r.u32() == 1
    with pytest.raises(WireError, match="1 trailing"):
        r.finish()
    assert issubclass(WireError, ValueError)
