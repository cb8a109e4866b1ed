"""Fixtures for the metrics aspect's own tests: outputs of known sizes, and a rule that
applies metrics_aspect through an attribute so a test can read the aspect's files."""

load(":aspect.bzl", "metrics_aspect")
load(":providers.bzl", "TargetMetricsInfo")

def _sized_outputs_impl(ctx):
    outputs = []
    commands = []
    for name, size in sorted(ctx.attr.files.items()):
        f = ctx.actions.declare_file(ctx.label.name + "/" + name)
        outputs.append(f)
        commands.append("head -c %d /dev/zero > '%s'" % (int(size), f.path))
    if ctx.attr.tree:
        tree = ctx.actions.declare_directory(ctx.label.name + "/tree")
        outputs.append(tree)
        for name, size in sorted(ctx.attr.tree.items()):
            commands.append("mkdir -p '%s' && head -c %d /dev/zero > '%s/%s'" % (tree.path, int(size), tree.path, name))
    ctx.actions.run_shell(
        outputs = outputs,
        command = " && ".join(commands),
        mnemonic = "SizedOutputs",
    )
    return [DefaultInfo(files = depset(outputs))]

sized_outputs = rule(
    implementation = _sized_outputs_impl,
    doc = "Writes files of exactly the given sizes (zero bytes) and optionally one directory of them.",
    attrs = {
        "files": attr.string_dict(doc = "file name -> size in bytes"),
        "tree": attr.string_dict(doc = "file name -> size in bytes, inside the directory output `tree`"),
    },
)

def _metrics_of_impl(ctx):
    files = [t[TargetMetricsInfo].json for t in ctx.attr.targets]
    return [DefaultInfo(files = depset(files), runfiles = ctx.runfiles(files = files))]

metrics_of = rule(
    implementation = _metrics_of_impl,
    doc = "The metrics aspect's JSON for each of `targets`, as files and runfiles.",
    attrs = {
        "targets": attr.label_list(aspects = [metrics_aspect], doc = "Targets to measure."),
    },
)
