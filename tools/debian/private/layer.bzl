"""debian_layer: the locked .debs' files as one OCI layer blob (see build_layer.py)."""

DebianLayerInfo = provider(
    doc = "A gzip tar layer unpacked from locked Debian packages.",
    fields = {
        "blob": "File: the layer (tar+gzip).",
        "info": "File: JSON with the layer's descriptor, diff_id, packages and paths.",
        "lock": "File: the lock the packages came from.",
        "description": "One line for the image's history.",
    },
)

def _debian_layer_impl(ctx):
    blob = ctx.actions.declare_file(ctx.label.name + ".tar.gz")
    info = ctx.actions.declare_file(ctx.label.name + ".json")
    debs = ctx.files.debs
    if not debs:
        fail("debs: no .deb files")
    args = ctx.actions.args()
    args.add("--lock", ctx.file.lock)
    args.add("--debs", debs[0].dirname)
    args.add("--layer", blob)
    args.add("--info", info)
    args.add("--user", ctx.attr.user)
    args.add_all(ctx.attr.require, before_each = "--require")
    ctx.actions.run(
        executable = ctx.executable._builder,
        arguments = [args],
        inputs = depset([ctx.file.lock] + debs),
        outputs = [blob, info],
        mnemonic = "DebianLayer",
        progress_message = "Unpacking %d Debian packages into %s" % (len(debs), ctx.label),
    )
    return [
        DefaultInfo(files = depset([blob, info])),
        DebianLayerInfo(
            blob = blob,
            info = info,
            lock = ctx.file.lock,
            description = "%s: %d locked Debian packages" % (ctx.label, len(debs)),
        ),
    ]

debian_layer = rule(
    implementation = _debian_layer_impl,
    doc = "Unpacks the locked .debs (no maintainer scripts) into one deterministic layer.",
    attrs = {
        "debs": attr.label(mandatory = True, allow_files = [".deb"], doc = "The lock's .debs (`@<repo>//:debs`)."),
        "lock": attr.label(mandatory = True, allow_single_file = [".json"], doc = "The lock (`@<repo>//:lock.json`)."),
        "require": attr.string_list(doc = "Absolute paths that must be files in the layer (the interpreter)."),
        "user": attr.string(default = "65532:65532", doc = "uid:gid of the /etc/passwd user `nonroot` (the images' User)."),
        "_builder": attr.label(default = "//tools/debian/private:build_layer", executable = True, cfg = "exec"),
    },
)
