"""rust_clippy_test and rustfmt_test: lint findings as failing, cacheable tests.

Each rule runs its tool in a build action that records the tool's output and
exit status (tools/rust/private/capture_wrapper.sh); the test then replays the
output and exits with that status. Findings therefore show up as test failures
with the tool's own message in test.log, and unchanged crates are not re-linted.
"""

load(":coverage.bzl", "COVERAGE_ATTRS", "coverage_runtime")
load(":providers.bzl", "CrateInfo")
load(":rustc.bzl", "ACTION_ENV", "TOOLCHAIN_TYPE", "rustc_args")

def _replay_test(ctx, results):
    """Writes the test script that prints every captured log and fails on any non-zero status."""
    lines = ["#!/bin/sh", "status=0"]
    for log, status in results:
        lines.append("cat '%s'" % log.short_path)
        lines.append("[ \"$(cat '%s')\" = 0 ] || status=1" % status.short_path)
    lines.append("exit $status")
    script = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.write(script, "\n".join(lines) + "\n", is_executable = True)
    files = [f for pair in results for f in pair]
    return DefaultInfo(executable = script, runfiles = ctx.runfiles(files = files))

def _capture(ctx, name, tool, arguments, inputs, tools, extra_outputs = []):
    log = ctx.actions.declare_file(name + ".log")
    status = ctx.actions.declare_file(name + ".status")
    ctx.actions.run(
        executable = ctx.executable._capture_wrapper,
        arguments = [status.path, log.path, tool.path] + arguments,
        inputs = inputs,
        tools = tools + [tool],
        outputs = [log, status] + extra_outputs,
        env = ACTION_ENV,
        mnemonic = ctx.attr._mnemonic,
        progress_message = "%s %s" % (ctx.attr._mnemonic, name),
    )
    return (log, status)

def _clippy_test_impl(ctx):
    toolchain = ctx.toolchains[TOOLCHAIN_TYPE]

    # Linted, never instrumented; but in a coverage build the deps are, and need the runtime.
    profiler_runtime = coverage_runtime(ctx, "")
    results = []
    for target in ctx.attr.targets:
        crate = target[CrateInfo]
        name = "%s/%s.clippy" % (ctx.label.name, crate.name)

        # A directory, because clippy writes no metadata when it finds something.
        out_dir = ctx.actions.declare_directory(name + ".out")
        args = rustc_args(ctx, toolchain, crate, profiler_runtime)
        args.add("--emit=metadata")
        args.add("--out-dir", out_dir.path)
        args.add("-Dwarnings")
        results.append(_capture(
            ctx,
            name,
            ctx.executable._process_wrapper,
            [toolchain.clippy_driver.path, args],
            depset([crate.root] + ([profiler_runtime] if profiler_runtime else []), transitive = [crate.srcs, crate.deps.transitive_rlibs]),
            [toolchain.clippy_driver],
            extra_outputs = [out_dir],
        ))
    return [_replay_test(ctx, results)]

def _rustfmt_test_impl(ctx):
    toolchain = ctx.toolchains[TOOLCHAIN_TYPE]
    results = []
    for target in ctx.attr.targets:
        crate = target[CrateInfo]
        name = "%s/%s.rustfmt" % (ctx.label.name, crate.name)
        results.append(_capture(
            ctx,
            name,
            toolchain.rustfmt,
            ["--check", "--color=never", "--edition", crate.edition, crate.root.path],
            crate.srcs,
            [],
        ))
    return [_replay_test(ctx, results)]

_LINT_ATTRS = {
    "targets": attr.label_list(providers = [CrateInfo], mandatory = True, doc = "Rust crates to check."),
    "_capture_wrapper": attr.label(
        default = "//tools/rust/private:capture_wrapper",
        executable = True,
        cfg = "exec",
    ),
}

rust_clippy_test = rule(
    implementation = _clippy_test_impl,
    doc = "Fails when clippy reports any warning (-Dwarnings) in the targets' sources.",
    attrs = dict(
        _LINT_ATTRS,
        _mnemonic = attr.string(default = "Clippy"),
        _process_wrapper = attr.label(
            default = "//tools/rust/private:process_wrapper",
            executable = True,
            cfg = "exec",
        ),
        **COVERAGE_ATTRS
    ),
    test = True,
    toolchains = [TOOLCHAIN_TYPE],
)

rustfmt_test = rule(
    implementation = _rustfmt_test_impl,
    doc = "Fails when `rustfmt --check` would reformat any of the targets' sources.",
    attrs = dict(_LINT_ATTRS, _mnemonic = attr.string(default = "Rustfmt")),
    test = True,
    toolchains = [TOOLCHAIN_TYPE],
)
