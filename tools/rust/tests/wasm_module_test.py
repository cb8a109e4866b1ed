"""Loads the Bazel-built checksum module in wasmtime and checks its export."""

import zlib
from pathlib import Path

import wasmtime
from runfiles import Runfiles

MODULE = "chimera/tools/rust/tests/checksum_module.wasm"


def load_module_bytes() -> bytes:
    path = Runfiles.Create().Rlocation(MODULE)
    return Path(path).read_bytes()


def test_module_is_release_sized_wasm() -> None:
    data = load_module_bytes()
    assert data[:4] == b"\0asm"
    # Release flags (LTO, strip, panic=abort) keep this tiny module small.
    assert len(data) < 64 * 1024


def test_export_matches_python_reference() -> None:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    instance = wasmtime.Instance(store, wasmtime.Module(engine, load_module_bytes()), [])
    checksum = instance.exports(store)["adler32_of_sequence"]
    for length in (0, 1, 255, 1000):
        expected = zlib.adler32(bytes(i % 256 for i in range(length)))
        assert checksum(store, length) == expected


def test_module_has_no_imports() -> None:
    module = wasmtime.Module(wasmtime.Engine(), load_module_bytes())
    assert [imp.name for imp in module.imports] == []
