"""Implementation of chimera_layer; the public API and its documentation are in //layers:defs.bzl."""

load("//tools/python:defs.bzl", "py_pytest_test", "requirement")
load("//tools/rust:defs.bzl", "rust_library", "rust_test", "rust_wasm_module")

# Who may depend on a layer's implementation besides its own package: the
# end-to-end packages, which run several layers together.
END_TO_END = [
    "//bench:__subpackages__",
    "//layers/flow:__pkg__",
    "//tools/load:__pkg__",
    "//tools/loop:__pkg__",
    "//tools/main:__pkg__",
]

# The crates each kind of module builds on: (core deps, face deps).
_ABI_CRATES = {
    "core": (["//rust/wire"], ["//rust/wasm_export"]),
    "guest": (["//rust/guest_abi"], ["//rust/guest_abi"]),
}

# The contract fuzz test every layer with a service gets (see //py:fuzz).
_FUZZ_TEST = "//py:fuzz/contract_fuzz_test.py"

# What every layer test imports besides the layer itself.
_TEST_DEPS = [
    "//py:testing",  # chimera.testing.helpers: free_port, FakeClock, wait_until
    requirement("grpcio"),
    requirement("pytest"),
    requirement("wasmtime"),
]

def chimera_layer(
        name,
        deps,
        tests,
        data = [],
        abi = "core",
        test_deps = [],
        test_data = [],
        test_overrides = {},
        service = None,
        fuzz_args = [],
        core_test_data = []):
    """Declares one layer's targets (see //layers:defs.bzl for the table).

    Args:
      name: the package below `chimera` ("planning"); the prefix of every target.
      deps: everything the Python package imports, listed explicitly.
      tests: `t` for each tests/test_<t>.py; each becomes `<t>_test`.
      data: the layer's data files (its `<name>_core_module` is added).
      abi: "core" or "guest": which ABI the module exports.
      test_deps: what the tests import beyond the layer, chimera.testing, grpcio, pytest
        and wasmtime.
      test_data: files the tests read (other layers' servers, modules).
      test_overrides: `t` -> dict of py_test attributes (size, tags, ...) for `<t>_test`.
      service: the layer's full gRPC service name ("chimera.v1.PlanningService");
        when given, `<name>_fuzz_test` fuzzes it through reflection.
      fuzz_args: flags the fuzzed server starts with (besides its port flags).
      core_test_data: files the core's tests read with include_str! (e.g. test
        vectors in JSON that the Python tests read too).
    """
    if abi not in _ABI_CRATES:
        fail("chimera_layer(%s): abi must be one of %s, not %r" % (name, sorted(_ABI_CRATES), abi))
    core_crates, face_crates = _ABI_CRATES[abi]
    private = ["//%s:__pkg__" % native.package_name()] + END_TO_END
    core = name + "_core"
    face = name + "_wasm"
    module = name + "_core_module"

    rust_library(
        name = core,
        srcs = native.glob(["rust/src/**/*.rs"]),
        crate_root = "rust/src/lib.rs",
        deps = core_crates,
        visibility = private,
    )
    rust_test(name = core + "_test", crate = ":" + core, compile_data = core_test_data)
    rust_library(
        name = face,
        srcs = native.glob(["rust/wasm/src/**/*.rs"]),
        crate_root = "rust/wasm/src/lib.rs",
        deps = [":" + core] + face_crates,
        visibility = private,
    )
    rust_test(name = face + "_test", crate = ":" + face)
    rust_wasm_module(
        name = module,
        crate = ":" + face,
        visibility = ["//visibility:public"],
    )

    package = "py/chimera/%s/" % name
    native.py_library(
        name = name,
        srcs = native.glob([package + "**/*.py"]),
        data = data + [":" + module],
        imports = ["py"],
        deps = deps,
        visibility = private,
    )
    native.py_binary(
        name = "server",
        srcs = [package + "main.py"],
        main = package + "main.py",
        deps = [":" + name],
        visibility = ["//visibility:public"],
    )

    support = native.glob(["tests/*.py"], exclude = ["tests/test_*.py"])
    layer_test_deps = [":" + name] + _TEST_DEPS + test_deps
    if support:
        native.py_library(
            name = name + "_test_support",
            testonly = True,
            srcs = support,
            data = test_data,
            imports = ["tests"],
            deps = layer_test_deps,
        )
        layer_test_deps = layer_test_deps + [":%s_test_support" % name]
    for t in tests:
        attrs = {"size": "small"}
        attrs.update(test_overrides.get(t, {}))
        py_pytest_test(
            name = "%s_test" % t,
            srcs = ["tests/test_%s.py" % t],
            data = test_data,
            deps = layer_test_deps,
            **attrs
        )
    if service:
        py_pytest_test(
            name = name + "_fuzz_test",
            size = "medium",
            srcs = [_FUZZ_TEST],
            data = [":server"],
            env = {
                "CHIMERA_FUZZ_ARGS": " ".join(fuzz_args),
                "CHIMERA_FUZZ_SERVER": "%s/server" % native.package_name(),
                "CHIMERA_FUZZ_SERVICE": service,
            },
            deps = [
                "//py:fuzz",
                "//py:processes",
                requirement("grpcio"),
                requirement("grpcio-health-checking"),
            ],
        )
    for t in test_overrides:
        if t not in tests:
            fail("chimera_layer(%s): test_overrides names %r, which is not in tests" % (name, t))
