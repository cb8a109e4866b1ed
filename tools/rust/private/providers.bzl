"""Providers shared by Chimera's Rust rules."""

CrateInfo = provider(
    doc = """A Rust crate: everything one rustc action needs, and enough to compile it again.

The rules build one per target and hand it to `rustc_compile_action` (rustc.bzl), the
one place that turns it into a command line; dependents get it as a provider (a test of
the library's sources, a lint, a wasm module rebuild it with another type or output).""",
    fields = {
        "deps": "DepInfo: the crates this crate's sources depend on.",
        "edition": "string: Rust edition, e.g. \"2021\".",
        "is_test": "bool: compiled with --test (the crate's #[test] functions become a test binary).",
        "name": "string: crate name as used in `extern crate` / `use`.",
        "output": "File: the compiled artifact (.rlib, executable, .so or .wasm).",
        "root": "File: the crate root (lib.rs / main.rs).",
        "rustc_flags": "list of strings: extra rustc flags the crate was declared with.",
        "srcs": "depset of Files: every source file of the crate.",
        "target_triple": "string: rustc --target, e.g. \"wasm32-unknown-unknown\"; \"\" for the host.",
        "type": "string: rustc --crate-type (rlib, bin, cdylib, ...).",
    },
)

DepInfo = provider(
    doc = "What compiling against a set of crates needs: `--extern` for direct deps, `-L` for all.",
    fields = {
        "direct_crates": "list of structs(name, rlib): crates passed with --extern.",
        "transitive_rlibs": "depset of Files: every rlib reachable, needed as inputs and search paths.",
    },
)

WasmModuleInfo = provider(
    doc = "A WebAssembly module built from a Rust crate.",
    fields = {
        "crate_name": "string: the crate the module was built from.",
        "target_triple": "string: wasm32-unknown-unknown or wasm32-wasi.",
        "wasm": "File: the .wasm module.",
    },
)

ProfilerRuntimeInfo = provider(
    doc = """The `profiler_builtins` crate `-Cinstrument-coverage` links (see coverage.bzl).

Debian's rustc ships none; ours wraps LLVM's profile runtime from Debian's
libclang-rt-<llvm>-dev, the same LLVM as the compiler's.""",
    fields = {
        "missing": "string: why there is no runtime (empty when rlib is set).",
        "rlib": "File or None: libprofiler_builtins.rlib.",
    },
)
