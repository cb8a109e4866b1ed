"""rust_wasm_module: the same crate sources, compiled to a release-optimized .wasm."""

load(":providers.bzl", "CrateInfo", "WasmModuleInfo")
load(":rustc.bzl", "TOOLCHAIN_TYPE", "rustc_compile_action")

_TARGET_TRIPLE_SETTING = "//tools/rust:target_triple"

def _wasm_transition_impl(_settings, attr):
    return {_TARGET_TRIPLE_SETTING: attr.target_triple}

# Dependencies are rebuilt for the wasm target; without this rustc reports
# "couldn't find crate X with expected target triple wasm32-unknown-unknown".
wasm_transition = transition(
    implementation = _wasm_transition_impl,
    inputs = [],
    outputs = [_TARGET_TRIPLE_SETTING],
)

def _rust_wasm_module_impl(ctx):
    crate = ctx.attr.crate[0][CrateInfo]
    wasm = ctx.actions.declare_file(ctx.label.name + ".wasm")

    # The library's sources and deps (already built for the target), linked as a cdylib.
    rustc_compile_action(ctx, ctx.toolchains[TOOLCHAIN_TYPE], CrateInfo(
        name = crate.name,
        type = "cdylib",
        root = crate.root,
        srcs = crate.srcs,
        deps = crate.deps,
        edition = crate.edition,
        output = wasm,
        rustc_flags = crate.rustc_flags,
        is_test = False,
        target_triple = ctx.attr.target_triple,
    ))
    return [
        DefaultInfo(files = depset([wasm]), runfiles = ctx.runfiles(files = [wasm])),
        WasmModuleInfo(crate_name = crate.name, target_triple = ctx.attr.target_triple, wasm = wasm),
    ]

rust_wasm_module = rule(
    implementation = _rust_wasm_module_impl,
    doc = """Builds a rust_library's sources as a cdylib WebAssembly module `<name>.wasm`.

The module is always release-optimized (opt-level 3, fat LTO, one codegen unit,
panic=abort, symbols stripped), whatever the compilation mode. Provides
WasmModuleInfo.""",
    attrs = {
        "crate": attr.label(
            providers = [CrateInfo],
            mandatory = True,
            cfg = wasm_transition,
            doc = "The rust_library whose sources (and deps, rebuilt for wasm) make the module.",
        ),
        "target_triple": attr.string(
            default = "wasm32-unknown-unknown",
            values = ["wasm32-unknown-unknown", "wasm32-wasi"],
        ),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
        "_process_wrapper": attr.label(
            default = "//tools/rust/private:process_wrapper",
            executable = True,
            cfg = "exec",
        ),
    },
    toolchains = [TOOLCHAIN_TYPE],
)
