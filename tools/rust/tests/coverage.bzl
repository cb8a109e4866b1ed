"""`instrumented`: a rust_test rebuilt with --//tools/rust:coverage, for coverage_test."""

_COVERAGE = "//tools/rust:coverage"

def _coverage_on_impl(_settings, _attr):
    return {_COVERAGE: True}

coverage_on = transition(implementation = _coverage_on_impl, inputs = [], outputs = [_COVERAGE])

def _instrumented_impl(ctx):
    test = ctx.attr.test[0]
    launcher = test[DefaultInfo].files_to_run.executable
    return [DefaultInfo(files = depset([launcher]), runfiles = test[DefaultInfo].default_runfiles)]

instrumented = rule(
    implementation = _instrumented_impl,
    doc = "The coverage launcher of `test` built with coverage on (its runfiles carry the instrumented binary).",
    attrs = {
        "test": attr.label(mandatory = True, cfg = coverage_on),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
)
