"""The validation core through its real WASM module, checked against
independent references: hashlib for SHA-256 and wasmtime's own parser for
module facts."""

from __future__ import annotations

import hashlib
import random

import pytest
import wasmtime

from chimera.validation import artifacts
from chimera.validation.core import ValidationCore
from chimera.validation.policy import ModulePolicy

CRITICAL, WARNING = 3, 2
SAFETY, INTEGRITY, COMPLIANCE = 1, 2, 3

SAMPLE_WAT = """
(module
  (type $t (func (param i32) (result i32)))
  (import "env" "log" (func $log (param i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2 16)
  (global (export "g") i32 (i32.const 7))
  (func (export "run") (type $t) (local.get 0))
  (func (export "helper") (result i32) (i32.const 1))
)
"""


@pytest.fixture(scope="module")
def core() -> ValidationCore:
    return ValidationCore.load()


def test_sha256_standard_vectors(core: ValidationCore) -> None:
    assert core.sha256(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert core.sha256(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert core.sha256(b"a" * 1_000_000) == (
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
    )


def test_sha256_matches_hashlib_at_block_boundaries(core: ValidationCore) -> None:
    rng = random.Random(7)
    for n in (1, 55, 56, 63, 64, 65, 119, 120, 128, 1000, 65537):
        data = rng.randbytes(n)
        assert core.sha256(data) == hashlib.sha256(data).hexdigest(), n


def test_module_facts_agree_with_wasmtime(core: ValidationCore) -> None:
    wasm = wasmtime.wat2wasm(SAMPLE_WAT)
    allow_all = ModulePolicy(allowed_imports=("env.*", "wasi_snapshot_preview1.*"))
    report = core.vet_module(wasm, allow_all)
    reference = wasmtime.Module(wasmtime.Engine(), wasm)
    assert [(m, n) for m, n, _ in report.imports] == [(i.module, i.name) for i in reference.imports]
    assert [k for _, _, k in report.imports] == ["func", "func"]
    assert [e[0] for e in report.exports] == [e.name for e in reference.exports]
    assert {e[0]: e[1] for e in report.exports} == {
        "memory": "memory", "g": "global", "run": "func", "helper": "func",
    }
    assert report.memories[0].min_pages == 2 and report.memories[0].max_pages == 16
    assert report.parsed and report.size_bytes == len(wasm)
    assert report.sha256 == hashlib.sha256(wasm).hexdigest()
    assert report.findings == () and report.risk_score == 0.0


def test_policy_rules_fire_with_locations(core: ValidationCore) -> None:
    wasm = wasmtime.wat2wasm(SAMPLE_WAT)
    policy = ModulePolicy(
        allowed_imports=("env.log",),
        max_memory_pages=8,
        max_size_bytes=16,
        required_exports=("memory", "_start"),
    )
    report = core.vet_module(wasm, policy, extra_exports=["run", "missing_fn"],
                             expected_sha256="0" * 64)
    got = [(f.rule, f.family, f.severity, f.location) for f in report.findings]
    assert got == [
        ("module.import_not_allowed", SAFETY, CRITICAL, "wasi_snapshot_preview1.fd_write"),
        ("module.memory_exceeds_limit", SAFETY, CRITICAL, "memory[0]"),
        ("module.digest_mismatch", INTEGRITY, CRITICAL, "sha256"),
        ("module.too_large", COMPLIANCE, CRITICAL, "module"),
        ("module.missing_export", COMPLIANCE, CRITICAL, "_start"),
        ("module.missing_export", COMPLIANCE, CRITICAL, "missing_fn"),
    ]
    assert report.risk_score == 5.0


def test_memory_without_maximum(core: ValidationCore) -> None:
    wasm = wasmtime.wat2wasm('(module (memory (export "memory") 1))')
    lax = core.vet_module(wasm, ModulePolicy(require_memory_max=False))
    assert [(f.rule, f.severity) for f in lax.findings] == [("module.memory_max_missing", WARNING)]
    assert lax.memories[0].max_pages is None
    strict = core.vet_module(wasm, ModulePolicy(require_memory_max=True))
    assert strict.findings[0].severity == CRITICAL


@pytest.mark.parametrize(
    "data",
    [b"", b"\0asm", b"\0asm\x02\0\0\0", b"\x7fELF\x02\x01\x01\0", b"\0asm\x01\0\0\0\x01\x05\x01"],
)
def test_malformed_bytes_are_an_integrity_failure(core: ValidationCore, data: bytes) -> None:
    report = core.vet_module(data, ModulePolicy())
    assert not report.parsed
    assert [f.rule for f in report.findings] == ["module.parse_error"]
    assert report.findings[0].family == INTEGRITY


def test_every_prefix_of_a_real_module_is_handled(core: ValidationCore) -> None:
    wasm = wasmtime.wat2wasm(SAMPLE_WAT)
    for n in range(0, len(wasm), 3):
        report = core.vet_module(wasm[:n], ModulePolicy())
        assert report.size_bytes == n  # never a crash, always an answer


def test_parses_the_rust_built_core_module_itself(core: ValidationCore) -> None:
    wasm = artifacts.locate(artifacts.CORE_WASM).read_bytes()
    report = core.vet_module(wasm, ModulePolicy(required_exports=("memory", "validation_sha256")))
    reference = wasmtime.Module(wasmtime.Engine(), wasm)
    assert report.parsed and report.imports == ()
    assert [e[0] for e in report.exports] == [e.name for e in reference.exports]
    assert report.findings[0].rule == "module.memory_max_missing"  # rustc declares no maximum


def test_dependency_checks(core: ValidationCore) -> None:
    findings = core.check_dependencies([("a", ["c"]), ("b", ["a"]), ("c", ["b"]), ("d", ["zz"])])
    assert [f.rule for f in findings] == ["plan.unknown_dependency", "plan.dependency_cycle"]
    assert findings[1].message == "dependency cycle: a -> b -> c -> a (3 tasks cannot be ordered)"
    assert core.check_dependencies([("a", []), ("b", ["a"])]) == ()


def test_module_is_small_import_free_and_speaks_abi_v1() -> None:
    from chimera.validation import artifacts

    wasm = artifacts.locate(artifacts.CORE_WASM).read_bytes()
    assert wasm[:4] == b"\0asm" and len(wasm) < 256 * 1024  # release build: LTO, stripped
    module = wasmtime.Module(wasmtime.Engine(), wasm)
    assert list(module.imports) == []
    exports = {e.name for e in module.exports}
    assert {"memory", "chimera_core_alloc", "chimera_core_result_ptr", "chimera_core_result_len"} <= exports
