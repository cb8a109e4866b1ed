"""rust_library, rust_binary, rust_shared_library and rust_test."""

load("@bazel_skylib//rules:common_settings.bzl", "BuildSettingInfo")
load(":coverage.bzl", "COVERAGE_ATTRS", "coverage_launcher", "coverage_runtime")
load(":providers.bzl", "CrateInfo", "DepInfo")
load(":rustc.bzl", "TOOLCHAIN_TYPE", "crate_name", "find_crate_root", "merge_deps", "rustc_compile_action")

_OUTPUT_NAMES = {
    "bin": "{name}",
    "cdylib": "lib{crate}.so",
    "rlib": "lib{crate}.rlib",
}

_WASM_OUTPUT_NAMES = {
    "bin": "{name}.wasm",
    "cdylib": "{name}.wasm",
    "rlib": "lib{crate}.rlib",
}

def _target_triple(ctx):
    return ctx.attr._target_triple[BuildSettingInfo].value

def _crate_rule_impl(ctx, kind, crate_type, is_test = False):
    target_triple = _target_triple(ctx)
    name = crate_name(kind, ctx.label, ctx.attr.crate_name)
    srcs = depset(ctx.files.srcs + ctx.files.compile_data)
    deps = merge_deps(ctx.attr.deps)
    edition = ctx.attr.edition
    rustc_flags = ctx.attr.rustc_flags

    if not (is_test and ctx.attr.crate):
        root = find_crate_root(kind, ctx.label, ctx.files.srcs, ctx.file.crate_root, crate_type)
    else:
        # Test the library's own sources (its #[cfg(test)] modules) against its deps.
        library = ctx.attr.crate[CrateInfo]
        name = library.name
        root = library.root
        srcs = depset(transitive = [srcs, library.srcs])
        deps = DepInfo(
            direct_crates = library.deps.direct_crates + deps.direct_crates,
            transitive_rlibs = depset(transitive = [library.deps.transitive_rlibs, deps.transitive_rlibs]),
        )
        edition = library.edition
        rustc_flags = library.rustc_flags + rustc_flags

    names = _WASM_OUTPUT_NAMES if target_triple.startswith("wasm32") else _OUTPUT_NAMES
    crate_info = CrateInfo(
        name = name,
        type = crate_type,
        root = root,
        srcs = srcs,
        deps = deps,
        edition = edition,
        output = ctx.actions.declare_file(names[crate_type].format(name = ctx.label.name, crate = name)),
        rustc_flags = rustc_flags,
        is_test = is_test,
        target_triple = target_triple,
    )
    profiler_runtime = coverage_runtime(ctx, target_triple)
    rustc_compile_action(ctx, ctx.toolchains[TOOLCHAIN_TYPE], crate_info, profiler_runtime)

    output = crate_info.output
    executable = output
    if is_test and profiler_runtime:
        executable = coverage_launcher(ctx, output)
    runfiles = ctx.runfiles(files = [output] + ctx.files.data)
    for data in ctx.attr.data:
        runfiles = runfiles.merge(data[DefaultInfo].default_runfiles)
    providers = [
        crate_info,
        DepInfo(direct_crates = deps.direct_crates, transitive_rlibs = deps.transitive_rlibs),
    ]
    if crate_type in ("bin",) or is_test:
        providers.append(DefaultInfo(files = depset([output]), executable = executable, runfiles = runfiles))
    else:
        providers.append(DefaultInfo(files = depset([output]), runfiles = runfiles))
    return providers

_COMMON_ATTRS = dict(COVERAGE_ATTRS, **{
    "compile_data": attr.label_list(
        allow_files = True,
        doc = "Files the sources read at compile time (include_str!, include_bytes!).",
    ),
    "crate_name": attr.string(doc = "Crate name; defaults to the target name with '-' replaced by '_'. ASCII letters, digits and '_' only (checked at analysis)."),
    "crate_root": attr.label(allow_single_file = [".rs"], doc = "The crate root; defaults to lib.rs / main.rs among srcs."),
    "data": attr.label_list(allow_files = True, doc = "Files needed at run time."),
    "deps": attr.label_list(providers = [CrateInfo, DepInfo], doc = "rust_library targets this crate uses."),
    "edition": attr.string(default = "2021", values = ["2015", "2018", "2021"]),
    "rustc_flags": attr.string_list(doc = "Extra rustc flags."),
    "srcs": attr.label_list(allow_files = [".rs"], doc = "Rust sources of the crate."),
    "_process_wrapper": attr.label(
        default = "//tools/rust/private:process_wrapper",
        executable = True,
        cfg = "exec",
    ),
    "_target_triple": attr.label(default = "//tools/rust:target_triple"),
})

def _library_impl(ctx):
    return _crate_rule_impl(ctx, "rust_library", "rlib")

def _binary_impl(ctx):
    return _crate_rule_impl(ctx, "rust_binary", "bin")

def _shared_library_impl(ctx):
    return _crate_rule_impl(ctx, "rust_shared_library", "cdylib")

def _test_impl(ctx):
    return _crate_rule_impl(ctx, "rust_test", "bin", is_test = True)

rust_library = rule(
    implementation = _library_impl,
    doc = "A Rust library (.rlib). Provides CrateInfo and DepInfo to dependents.",
    attrs = _COMMON_ATTRS,
    toolchains = [TOOLCHAIN_TYPE],
)

rust_binary = rule(
    implementation = _binary_impl,
    doc = "A Rust executable.",
    attrs = _COMMON_ATTRS,
    executable = True,
    toolchains = [TOOLCHAIN_TYPE],
)

rust_shared_library = rule(
    implementation = _shared_library_impl,
    doc = "A C-ABI shared library (--crate-type=cdylib): lib<crate>.so natively.",
    attrs = _COMMON_ATTRS,
    toolchains = [TOOLCHAIN_TYPE],
)

rust_test = rule(
    implementation = _test_impl,
    doc = "Rust unit tests: either `crate` (the library's own sources with --test) or `srcs`.",
    attrs = dict(
        _COMMON_ATTRS,
        crate = attr.label(providers = [CrateInfo], doc = "A rust_library whose sources are compiled with --test."),
    ),
    test = True,
    toolchains = [TOOLCHAIN_TYPE],
)
