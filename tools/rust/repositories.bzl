"""Public entry point for registering Chimera's pinned Rust toolchain."""

load("//tools/rust/private:repositories.bzl", _rust_register_toolchains = "rust_register_toolchains")

rust_register_toolchains = _rust_register_toolchains
