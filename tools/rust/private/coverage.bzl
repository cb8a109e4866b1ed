"""Line coverage of native Rust with Debian's toolchain (`--//tools/rust:coverage`).

`-Cinstrument-coverage` makes rustc inject `extern crate profiler_builtins`, a crate
Debian's rustc does not ship. `rust_profiler_runtime` builds it: an empty `no_std`
crate marked `#![profiler_runtime]` that bundles LLVM's static profile runtime of the
compiler's own LLVM version (the toolchain's `profile_runtime`, from
libclang-rt-<llvm>-dev), so the raw profiles match Debian's llvm-profdata/llvm-cov of
that version. Instrumented crates find it through `-Lall=`.
"""

load("@bazel_skylib//rules:common_settings.bzl", "BuildSettingInfo")
load(":providers.bzl", "ProfilerRuntimeInfo")
load(":rustc.bzl", "ACTION_ENV", "TOOLCHAIN_TYPE", "is_wasm")

def _rust_profiler_runtime_impl(ctx):
    toolchain = ctx.toolchains[TOOLCHAIN_TYPE]
    runtime = toolchain.profile_runtime
    if not runtime:
        return [ProfilerRuntimeInfo(rlib = None, missing = toolchain.profile_runtime_missing)]
    rlib = ctx.actions.declare_file("libprofiler_builtins.rlib")
    archive = runtime.basename[len("lib"):-len(".a")]
    args = ctx.actions.args()
    args.add(ctx.file.src)
    args.add_all(["--crate-name", "profiler_builtins", "--crate-type", "rlib", "--edition", "2021"])
    args.add("--sysroot", toolchain.sysroot)
    args.add("-Lnative=" + runtime.dirname)
    args.add("-lstatic=" + archive)
    args.add("--emit=link")
    args.add("-o", rlib)
    ctx.actions.run(
        executable = ctx.executable._process_wrapper,
        arguments = [toolchain.rustc.path, args],
        inputs = [ctx.file.src, runtime],
        tools = [toolchain.rustc],
        outputs = [rlib],
        # #![profiler_runtime] is an unstable attribute; this crate, and no other, may use it.
        env = dict(ACTION_ENV, RUSTC_BOOTSTRAP = "1", RUSTC_VERSION = toolchain.version),
        mnemonic = "RustcProfilerRuntime",
        progress_message = "Compiling Rust profiler_builtins over %s" % runtime.basename,
    )
    return [ProfilerRuntimeInfo(rlib = rlib, missing = ""), DefaultInfo(files = depset([rlib]))]

rust_profiler_runtime = rule(
    implementation = _rust_profiler_runtime_impl,
    doc = "The profiler_builtins crate over the toolchain's LLVM profile runtime. Provides ProfilerRuntimeInfo.",
    attrs = {
        "src": attr.label(allow_single_file = [".rs"], mandatory = True),
        "_process_wrapper": attr.label(
            default = "//tools/rust/private:process_wrapper",
            executable = True,
            cfg = "exec",
        ),
    },
    toolchains = [TOOLCHAIN_TYPE],
)

# What every native crate rule needs to honour the coverage flag.
COVERAGE_ATTRS = {
    "_coverage": attr.label(default = "//tools/rust:coverage"),
    "_profiler_runtime": attr.label(
        default = "//tools/rust/private:profiler_builtins",
        providers = [ProfilerRuntimeInfo],
    ),
}

def coverage_runtime(ctx, target_triple):
    """The profiler_builtins rlib to instrument this crate with, or None when coverage is off.

    Fails (naming the Debian package) when coverage is on and the runtime is missing.
    """
    if not ctx.attr._coverage[BuildSettingInfo].value or is_wasm(target_triple):
        return None
    runtime = ctx.attr._profiler_runtime[ProfilerRuntimeInfo]
    if not runtime.rlib:
        fail("--//tools/rust:coverage: " + runtime.missing)
    return runtime.rlib

def coverage_launcher(ctx, binary):
    """A test launcher that sends the instrumented binary's profile to the test's outputs.

    Returns:
      the launcher File (the test's executable); `binary` must join its runfiles.
    """
    launcher = ctx.actions.declare_file(ctx.label.name + "_coverage_launcher.sh")
    ctx.actions.write(launcher, "\n".join([
        "#!/bin/sh",
        "# Bazel zips TEST_UNDECLARED_OUTPUTS_DIR into the test's outputs.zip; %p keeps",
        "# processes apart. Outside a test (bazel run) the profile lands in the current folder.",
        'LLVM_PROFILE_FILE="${TEST_UNDECLARED_OUTPUTS_DIR:-.}/%s-%%p.profraw" exec ./%s "$@"' % (
            ctx.label.name,
            binary.short_path,
        ),
        "",
    ]), is_executable = True)
    return launcher
