"""The blocks every layer (1-3) declares: its Rust core and its Python service.

    load("//layers:layer_core.bzl", "layer_core", "layer_service")

    layer_core(name = "discovery")

declares, in the calling package:

    discovery_core          rust_library over rust/src (crate root rust/src/lib.rs), on //rust/wire
    discovery_core_test     its native unit tests
    discovery_wasm          the face crate over rust/wasm/src: the core ABI exports
                            (chimera_alloc, discovery_window_stats, ...), on //rust/wasm_export
    discovery_wasm_test     its native unit tests
    discovery_core_module   discovery_core_module.wasm (wasm32-unknown-unknown, release)

plus the `_clippy` / `_rustfmt` tests rust_library adds to both crates; and

    layer_service(name = "discovery", data = [...], deps = [...], tests = ["core", ...])

declares the py_library `discovery` (package chimera.discovery under py/,
carrying the core module), the py_binary `server` (its main.py) and one
`<t>_test` per entry of `tests` (tests/test_<t>.py).
"""

load("//tools/python:defs.bzl", "py_pytest_test", "requirement")
load("//tools/rust:defs.bzl", "rust_library", "rust_test", "rust_wasm_module")

def layer_core(name, test_data = []):
    """Declares `<name>_core`, `<name>_wasm`, their tests and `<name>_core_module`.

    Args:
      name: the layer's short name ("discovery"), the prefix of every target.
      test_data: files the core's tests read with include_str! (e.g. test
        vectors shared with the Python tests).
    """
    core = name + "_core"
    face = name + "_wasm"
    rust_library(
        name = core,
        srcs = native.glob(["rust/src/**/*.rs"]),
        crate_root = "rust/src/lib.rs",
        deps = ["//rust/wire"],
    )
    rust_test(
        name = core + "_test",
        crate = ":" + core,
        compile_data = test_data,
    )
    rust_library(
        name = face,
        srcs = native.glob(["rust/wasm/src/**/*.rs"]),
        crate_root = "rust/wasm/src/lib.rs",
        deps = [
            ":" + core,
            "//rust/wasm_export",
        ],
    )
    rust_test(
        name = face + "_test",
        crate = ":" + face,
    )
    rust_wasm_module(
        name = name + "_core_module",
        crate = ":" + face,
    )

def layer_service(name, data, deps, tests, test_deps = [], test_data = [], test_overrides = {}):
    """Declares the py_library `name`, the py_binary `server` and the pytest targets.

    Args:
      name: the package below `chimera` ("discovery"); also the library's name.
      data: the layer's data files (its `<name>_core_module` is added).
      deps: everything the package imports (listed by the layer, explicitly).
      tests: `t` for each tests/test_<t>.py; each becomes `<t>_test`.
      test_deps: what the tests import beyond the library, grpcio, pytest and wasmtime.
      test_data: files the tests read beyond the library's data.
      test_overrides: per entry of `tests`, attributes replacing the defaults
        (e.g. {"store": {"tags": ["no-sandbox"]}, "service": {"size": "medium"}}).
    """
    package = "py/chimera/%s/" % name
    native.py_library(
        name = name,
        srcs = native.glob([package + "**/*.py"]),
        data = data + [":%s_core_module" % name],
        imports = ["py"],
        deps = deps,
    )
    native.py_binary(
        name = "server",
        srcs = [package + "main.py"],
        main = package + "main.py",
        deps = [":" + name],
    )
    for t in tests:
        attrs = {"data": test_data, "size": "small"}
        attrs.update(test_overrides.get(t, {}))
        py_pytest_test(
            name = "%s_test" % t,
            srcs = ["tests/test_%s.py" % t],
            deps = [
                ":" + name,
                requirement("grpcio"),
                requirement("pytest"),
                requirement("wasmtime"),
            ] + test_deps,
            **attrs
        )
