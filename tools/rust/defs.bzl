"""Public API of Chimera's Rust rules (rules_rust-compatible names and core attributes).

    load("//tools/rust:defs.bzl", "rust_library", "rust_test", "rust_wasm_module")

    rust_library(name = "core", srcs = glob(["src/**/*.rs"]), deps = ["//rust/guest_abi"])
    rust_test(name = "core_test", crate = ":core")
    rust_wasm_module(name = "core_wasm", crate = ":core")   # -> core_wasm.wasm

Every rust_library, rust_binary and rust_shared_library also gets two tests,
`<name>_clippy` (clippy, warnings are errors) and `<name>_rustfmt`
(`rustfmt --check`), so `bazel test //...` fails on lint-failing or unformatted
Rust. Pass `lint = False` only for generated code.

Providers (see private/providers.bzl): CrateInfo, DepInfo, WasmModuleInfo.
The toolchain is Debian's rustc, pinned in WORKSPACE by rust_register_toolchains().
"""

load("//tools/rust/private:lint.bzl", _rust_clippy_test = "rust_clippy_test", _rustfmt_test = "rustfmt_test")
load("//tools/rust/private:providers.bzl", _CrateInfo = "CrateInfo", _DepInfo = "DepInfo", _WasmModuleInfo = "WasmModuleInfo")
load(
    "//tools/rust/private:rust.bzl",
    _rust_binary = "rust_binary",
    _rust_library = "rust_library",
    _rust_shared_library = "rust_shared_library",
    _rust_test = "rust_test",
)
load("//tools/rust/private:wasm.bzl", _rust_wasm_module = "rust_wasm_module")

CrateInfo = _CrateInfo
DepInfo = _DepInfo
WasmModuleInfo = _WasmModuleInfo

rust_clippy_test = _rust_clippy_test
rustfmt_test = _rustfmt_test
rust_test = _rust_test
rust_wasm_module = _rust_wasm_module

def _with_lint_tests(rule, name, lint, **kwargs):
    rule(name = name, **kwargs)
    if lint:
        visibility = kwargs.get("visibility")
        tags = kwargs.get("tags", [])
        _rust_clippy_test(name = name + "_clippy", targets = [":" + name], tags = tags + ["lint"], visibility = visibility)
        _rustfmt_test(name = name + "_rustfmt", targets = [":" + name], tags = tags + ["lint"], visibility = visibility)

def rust_library(name, lint = True, **kwargs):
    """A Rust library (.rlib) plus its clippy and rustfmt tests."""
    _with_lint_tests(_rust_library, name, lint, **kwargs)

def rust_binary(name, lint = True, **kwargs):
    """A Rust executable plus its clippy and rustfmt tests."""
    _with_lint_tests(_rust_binary, name, lint, **kwargs)

def rust_shared_library(name, lint = True, **kwargs):
    """A cdylib shared library plus its clippy and rustfmt tests."""
    _with_lint_tests(_rust_shared_library, name, lint, **kwargs)
