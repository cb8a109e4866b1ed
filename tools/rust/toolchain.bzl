"""The `rust_toolchain` rule, instantiated by the generated @rust_toolchain repository."""

load("//tools/rust/private:toolchain.bzl", _rust_toolchain = "rust_toolchain")

rust_toolchain = _rust_toolchain
