"""Analysis-time tests of the Rust rules' rustc command lines and failure paths.

As in rules_rust's test/unit suites: each test analyses a real target (never builds
it) and asserts on the Rustc action it registers. `rust_rules_test_suite` declares the
fixture targets it needs (manual, so `bazel build //...` never builds or fails on them)
and the tests.
"""

load("@bazel_skylib//lib:unittest.bzl", "analysistest", "asserts")
load("//tools/rust:defs.bzl", "CrateInfo", "rust_binary", "rust_library", "rust_wasm_module")

def _rustc_action(env, target = None):
    """The one Rustc action of the target under test (or of `target`, through _actions_aspect)."""
    actions = target[_ActionsInfo].actions if target else analysistest.target_actions(env)
    rustc = [a for a in actions if a.mnemonic == "Rustc"]
    asserts.equals(env, 1, len(rustc), "Rustc actions of %s" % (target or analysistest.target_under_test(env)).label)
    return rustc[0]

def _flag_value(env, action, flag):
    """The argument after `flag` (rustc's `--flag value` form), failing the test if absent."""
    argv = action.argv
    if flag not in argv:
        analysistest.fail(env, "%s not in argv %s" % (flag, argv))
        return None
    return argv[argv.index(flag) + 1]

def _assert_has(env, action, expected):
    for arg in expected:
        asserts.true(env, arg in action.argv, "%s not in argv %s" % (arg, action.argv))

def _assert_lacks(env, action, unexpected):
    for arg in unexpected:
        asserts.false(env, arg in action.argv, "%s unexpectedly in argv %s" % (arg, action.argv))

def _args_starting(action, prefix):
    return [a for a in action.argv if a.startswith(prefix)]

# The actions of a target other than the one under test (skylib's aspect is private).
_ActionsInfo = provider(fields = ["actions"])

def _actions_aspect_impl(target, _ctx):
    return [_ActionsInfo(actions = target.actions)]

_actions_aspect = aspect(implementation = _actions_aspect_impl)

def _crate_name_test_impl(ctx):
    env = analysistest.begin(ctx)
    asserts.equals(env, ctx.attr.crate_name, _flag_value(env, _rustc_action(env), "--crate-name"))
    asserts.equals(env, ctx.attr.crate_name, analysistest.target_under_test(env)[CrateInfo].name)
    return analysistest.end(env)

crate_name_test = analysistest.make(_crate_name_test_impl, attrs = {"crate_name": attr.string()})

def _extern_test_impl(ctx):
    env = analysistest.begin(ctx)
    action = _rustc_action(env)
    dep = ctx.attr.dep[CrateInfo]
    asserts.equals(env, ["--extern=%s=%s" % (dep.name, dep.output.path)], _args_starting(action, "--extern="))
    asserts.equals(env, ["-Ldependency=" + dep.output.dirname], _args_starting(action, "-Ldependency="))
    asserts.true(env, dep.output in action.inputs.to_list(), "the dependency's rlib is not an input")
    return analysistest.end(env)

extern_test = analysistest.make(_extern_test_impl, attrs = {"dep": attr.label(providers = [CrateInfo])})

def _metadata_test_impl(ctx):
    env = analysistest.begin(ctx)
    mine = _args_starting(_rustc_action(env), "-Cmetadata=")
    other = _args_starting(_rustc_action(env, ctx.attr.same_crate_elsewhere), "-Cmetadata=")
    asserts.equals(env, 1, len(mine), "-Cmetadata arguments")
    asserts.equals(env, 1, len(other), "-Cmetadata arguments of the other target")

    # Two targets compiling a crate of the same name must not share symbol names.
    asserts.false(env, mine == other, "same -Cmetadata for two targets: %s" % mine)
    return analysistest.end(env)

metadata_test = analysistest.make(_metadata_test_impl, attrs = {
    "same_crate_elsewhere": attr.label(aspects = [_actions_aspect]),
})

def _test_flag_test_impl(ctx):
    env = analysistest.begin(ctx)
    action = _rustc_action(env)
    if ctx.attr.is_test:
        _assert_has(env, action, ["--test"])
        asserts.true(env, analysistest.target_under_test(env)[CrateInfo].is_test, "CrateInfo.is_test")
    else:
        _assert_lacks(env, action, ["--test"])
    return analysistest.end(env)

test_flag_test = analysistest.make(_test_flag_test_impl, attrs = {"is_test": attr.bool()})

_WASM_FLAGS = ["-Copt-level=3", "-Ccodegen-units=1", "-Cpanic=abort", "-Clto=fat", "-Cstrip=symbols"]

def _wasm_flags_test_impl(ctx):
    env = analysistest.begin(ctx)
    action = _rustc_action(env)
    asserts.equals(env, ctx.attr.target_triple, _flag_value(env, action, "--target"))
    asserts.equals(env, "cdylib", _flag_value(env, action, "--crate-type"))
    _assert_has(env, action, _WASM_FLAGS)

    # Release-optimized whatever -c says, and never linked with the host's cc.
    _assert_lacks(env, action, ["-Copt-level=0", "-Cdebuginfo=2"])
    asserts.equals(env, [], _args_starting(action, "-Clinker="))

    # The transition: the library the module links was rebuilt for wasm, in another
    # configuration than the native build of the same target.
    native = ctx.attr.native_dep[CrateInfo].output
    externs = _args_starting(action, "--extern=")
    asserts.equals(env, 1, len(externs), "--extern arguments")
    wasm_rlib = externs[0].split("=", 2)[2]
    asserts.true(env, wasm_rlib.endswith("/" + native.basename), "%s is not the dependency's rlib" % wasm_rlib)
    asserts.false(env, wasm_rlib == native.path, "the wasm module links the native build of its dependency")
    return analysistest.end(env)

_WASM_ATTRS = {
    "native_dep": attr.label(providers = [CrateInfo]),
    "target_triple": attr.string(),
}

wasm_flags_test = analysistest.make(_wasm_flags_test_impl, attrs = _WASM_ATTRS)

# The same, in a debug build: the module's flags must not follow -c.
wasm_flags_dbg_test = analysistest.make(
    _wasm_flags_test_impl,
    attrs = _WASM_ATTRS,
    config_settings = {"//command_line_option:compilation_mode": "dbg"},
)

def _native_dbg_test_impl(ctx):
    env = analysistest.begin(ctx)
    action = _rustc_action(env)
    _assert_has(env, action, ["-Copt-level=0", "-Cdebuginfo=2"])
    asserts.equals(env, 1, len(_args_starting(action, "-Clinker=")), "-Clinker arguments")
    _assert_lacks(env, action, ["--target"] + _WASM_FLAGS)
    return analysistest.end(env)

native_dbg_test = analysistest.make(
    _native_dbg_test_impl,
    config_settings = {"//command_line_option:compilation_mode": "dbg"},
)

def _analysis_failure_test_impl(ctx):
    env = analysistest.begin(ctx)
    for message in ctx.attr.messages:
        asserts.expect_failure(env, message)
    return analysistest.end(env)

analysis_failure_test = analysistest.make(
    _analysis_failure_test_impl,
    expect_failure = True,
    attrs = {"messages": attr.string_list(doc = "Each must appear in the failure.")},
)

def rust_rules_test_suite(name, library, library_test, binary, wasm_module, wasm_library, source, other_source):
    """Declares the fixtures and the analysis tests, and a test_suite `name` of them.

    Args:
      name: the test_suite's name.
      library: a rust_library without deps.
      library_test: a rust_test of `library` (crate = library).
      binary: a rust_binary whose only dep is `library`.
      wasm_module: a rust_wasm_module (wasm32-unknown-unknown) whose crate's only dep is `library`.
      wasm_library: the rust_library `wasm_module` builds.
      source: a lib.rs the fixtures compile.
      other_source: another .rs file that is not main.rs (for an ambiguous binary crate root).
    """
    fixture = {"lint": False, "tags": ["manual"], "testonly": True}
    rust_library(name = name + "-hyphenated", srcs = [source], **fixture)
    rust_library(name = name + "_declared", crate_name = "declared_name", srcs = [source], **fixture)
    rust_library(name = name + "_bad_declared", crate_name = "bad-name", srcs = [source], **fixture)
    rust_library(name = name + "_bad.target", srcs = [source], **fixture)
    rust_binary(name = name + "_no_root", srcs = [source, other_source], **fixture)
    rust_wasm_module(
        name = name + "_wasi",
        crate = wasm_library,
        target_triple = "wasm32-wasi",
        tags = ["manual"],
        testonly = True,
    )

    hyphenated = name + "-hyphenated"
    tests = {
        "crate_name_from_target": (crate_name_test, {"target_under_test": hyphenated, "crate_name": hyphenated.replace("-", "_")}),
        "crate_name_declared": (crate_name_test, {"target_under_test": name + "_declared", "crate_name": "declared_name"}),
        "extern": (extern_test, {"target_under_test": binary, "dep": library}),
        "metadata": (metadata_test, {"target_under_test": library, "same_crate_elsewhere": library_test}),
        "test_flag": (test_flag_test, {"target_under_test": library_test, "is_test": True}),
        "no_test_flag": (test_flag_test, {"target_under_test": library, "is_test": False}),
        "wasm_flags": (wasm_flags_test, {"target_under_test": wasm_module, "native_dep": library, "target_triple": "wasm32-unknown-unknown"}),
        "wasm_flags_dbg": (wasm_flags_dbg_test, {"target_under_test": wasm_module, "native_dep": library, "target_triple": "wasm32-unknown-unknown"}),
        "wasi_flags": (wasm_flags_test, {"target_under_test": name + "_wasi", "native_dep": library, "target_triple": "wasm32-wasi"}),
        "native_dbg": (native_dbg_test, {"target_under_test": library}),
        "bad_declared_crate_name_fails": (analysis_failure_test, {
            "target_under_test": name + "_bad_declared",
            "messages": ["rust_library", name + "_bad_declared", "invalid crate name 'bad-name' (its crate_name)", "found '-'"],
        }),
        "bad_target_crate_name_fails": (analysis_failure_test, {
            "target_under_test": name + "_bad.target",
            "messages": ["rust_library", "invalid crate name '%s_bad.target' (from the target name)" % name, "found '.'"],
        }),
        "ambiguous_crate_root_fails": (analysis_failure_test, {
            "target_under_test": name + "_no_root",
            "messages": ["rust_binary", name + "_no_root", "cannot pick a crate root among 2 sources: set crate_root (or add main.rs)"],
        }),
    }
    for test_name, (rule, kwargs) in tests.items():
        rule(name = "%s_%s_test" % (name, test_name), **kwargs)
    native.test_suite(name = name, tests = ["%s_%s_test" % (name, t) for t in tests])
