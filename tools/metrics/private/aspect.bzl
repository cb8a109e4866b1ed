"""metrics_aspect: per-target build metrics (label, kind, layer, deps, output sizes)."""

load(":layer.bzl", "layer_of")
load(":providers.bzl", "TargetMetricsInfo")

# Attributes whose targets count as a target's direct dependencies.
DEP_ATTRS = ["deps", "runtime_deps", "exports", "crate", "targets"]

# Attributes whose targets count as run-time data.
DATA_ATTRS = ["data"]

# Rule kinds whose default outputs are a layer's deliverables (what
# `binary_size_mb` sums). A target can opt in or out with the tags below.
DELIVERABLE_KINDS = [
    "cc_binary",
    "cc_shared_library",
    "go_binary",
    "java_binary",
    "pkg_tar",
    "pkg_zip",
    "rust_binary",
    "rust_shared_library",
    "rust_wasm_module",
]
DELIVERABLE_TAG = "metrics_deliverable"
NOT_DELIVERABLE_TAG = "metrics_not_deliverable"

def _labels(rule_attr, names):
    """Sorted, unique label strings of every Target in the named attributes."""
    labels = {}
    for name in names:
        value = getattr(rule_attr, name, None)
        if value == None:
            continue
        values = value if type(value) == "list" else [value]
        for item in values:
            if type(item) == "Target":
                labels[str(item.label)] = True
    return sorted(labels.keys())

def _is_deliverable(kind, tags):
    if NOT_DELIVERABLE_TAG in tags:
        return False
    return DELIVERABLE_TAG in tags or kind in DELIVERABLE_KINDS

def _metrics_aspect_impl(target, ctx):
    # Analysis tests (analysistest) may not register actions, and build
    # nothing to measure: their pass/fail comes through the BEP like any test's.
    if AnalysisTestResultInfo in target:
        return [TargetMetricsInfo(json = None, layer = layer_of(target.label))]
    kind = ctx.rule.kind
    tags = getattr(ctx.rule.attr, "tags", []) or []
    layer = layer_of(target.label)
    outputs = target[DefaultInfo].files.to_list()
    static = ctx.actions.declare_file("_metrics_static/%s.json" % ctx.label.name)
    ctx.actions.write(static, json.encode(struct(
        label = str(target.label),
        kind = kind,
        layer = layer,
        package = target.label.package,
        is_test = kind.endswith("_test"),
        deliverable = _is_deliverable(kind, tags),
        tags = sorted(tags),
        deps = _labels(ctx.rule.attr, DEP_ATTRS),
        data = _labels(ctx.rule.attr, DATA_ATTRS),
        bin_dir = ctx.bin_dir.path,
    )))

    report = ctx.actions.declare_file("_metrics/%s.json" % ctx.label.name)
    args = ctx.actions.args()
    args.add(report)
    args.add(static)
    for f in outputs:
        args.add(json.encode(f.path))
        args.add(f.path)
    ctx.actions.run(
        executable = ctx.executable._measure,
        arguments = [args],
        inputs = depset([static], transitive = [target[DefaultInfo].files]),
        outputs = [report],
        mnemonic = "MeasureOutputs",
        progress_message = "Measuring outputs of %s" % target.label,
        # It reads only its declared inputs, by path: a sandbox would cost more than the
        # measurement (about 0.1 s per target on 2 cores). Still cached, locally and remotely.
        execution_requirements = {"no-sandbox": "1"},
    )
    return [
        TargetMetricsInfo(json = report, layer = layer),
        OutputGroupInfo(metrics = depset([report])),
    ]

metrics_aspect = aspect(
    implementation = _metrics_aspect_impl,
    doc = """Records one JSON per target in output group `metrics`:

    label, kind, layer, package, is_test, deliverable, tags, deps, data, bin_dir,
    outputs [{path, size_bytes, type}] and total_bytes. Sizes are measured by an
    action from the built files, so they are exact and cacheable like any output.

    bazel build //... --aspects=//tools/metrics:defs.bzl%metrics_aspect --output_groups=+metrics
    """,
    attrs = {
        "_measure": attr.label(
            default = "//tools/metrics/private:measure_outputs",
            executable = True,
            cfg = "exec",
        ),
    },
    provides = [TargetMetricsInfo],
)
