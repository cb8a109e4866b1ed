"""oci_image: a Python server's runfiles on a Debian base layer, as a deterministic OCI image layout."""

load("//tools/debian:defs.bzl", "DebianLayerInfo")

OciImageInfo = provider(
    doc = "An OCI image layout built by oci_image.",
    fields = {
        "layout": "Tree artifact: the OCI image layout (tag `latest`).",
        "digest": "File holding the manifest digest, `sha256:<hex>`.",
        "entrypoint": "The config's Entrypoint (list of strings).",
    },
)

# Where the image keeps the runfiles tree (RUNFILES_DIR).
_APP_ROOT = "/app/runfiles"

def _runfiles_path(ctx, f):
    """Where a file sits below the runfiles root: <workspace>/<path> or <repo>/<path>."""
    if f.short_path.startswith("../"):
        return f.short_path[3:]
    return ctx.workspace_name + "/" + f.short_path

def _oci_image_impl(ctx):
    binary = ctx.attr.binary
    runfiles = binary[DefaultInfo].default_runfiles
    entries = []
    inputs = []
    for f in runfiles.files.to_list():
        if f == ctx.executable.binary:
            continue  # the py_binary launcher names the build machine's interpreter
        entries.append([_runfiles_path(ctx, f), f.path])
        inputs.append(f)
    main = ctx.workspace_name + "/" + ctx.attr.main
    if main not in [e[0] for e in entries]:
        fail("main %s is not in the runfiles of %s" % (ctx.attr.main, binary.label))

    for volume in ctx.attr.volumes:
        if not volume.startswith("/") or volume.startswith(_APP_ROOT + "/") or volume.endswith("/"):
            fail("volume %r: an absolute directory outside %s, without a trailing /" % (volume, _APP_ROOT))

    # The image's interpreter: the py runtime's path, which the build checks is a file
    # of the base layer (an in-image runtime names a path, not a build file).
    runtime = ctx.attr.python[PyRuntimeInfo]
    if runtime.interpreter_path == None:
        fail("python: %s must name an in-image interpreter_path, not a build file" % ctx.attr.python.label)
    base = ctx.attr.base[DebianLayerInfo]

    imports = [ctx.workspace_name]
    if PyInfo in binary:
        imports += binary[PyInfo].imports.to_list()
    entrypoint = [runtime.interpreter_path, _APP_ROOT + "/" + main]
    labels = dict(ctx.attr.labels)
    labels.update({
        "org.opencontainers.image.title": ctx.label.name,
        "chimera.bazel_target": str(binary.label),
        "chimera.base_layer": str(ctx.attr.base.label),
        "chimera.layer": ctx.attr.layer,
    })
    spec = struct(
        entries = sorted(entries),
        external_prefixes = [p for p in sorted({e[0].split("/")[0]: True for e in entries}.keys()) if p != ctx.workspace_name],
        app_root = _APP_ROOT,
        base = struct(blob = base.blob.path, info = base.info.path, history = base.description),
        interpreter = runtime.interpreter_path,
        config = struct(
            Entrypoint = entrypoint,
            Cmd = ctx.attr.args,
            Env = [
                "PATH=/usr/local/bin:/usr/bin:/bin",
                "PYTHONPATH=" + ":".join([_APP_ROOT + "/" + i for i in imports]),
                "PYTHONDONTWRITEBYTECODE=1",
                "PYTHONNOUSERSITE=1",
                "RUNFILES_DIR=" + _APP_ROOT,
            ],
            ExposedPorts = {"%d/tcp" % p: {} for p in ctx.attr.ports},
            Volumes = {v: {} for v in ctx.attr.volumes},
            Labels = labels,
            User = ctx.attr.user,
            WorkingDir = _APP_ROOT + "/" + ctx.workspace_name,
        ),
    )
    spec_file = ctx.actions.declare_file(ctx.label.name + ".spec.json")
    ctx.actions.write(spec_file, spec.to_json())

    layout = ctx.actions.declare_directory(ctx.label.name)
    digest = ctx.actions.declare_file(ctx.label.name + ".digest")
    args = ctx.actions.args()
    args.add("--spec", spec_file)
    args.add("--status", ctx.info_file)
    args.add("--out", layout.path)
    args.add("--digest", digest)
    ctx.actions.run(
        executable = ctx.executable._builder,
        arguments = [args],
        inputs = depset([spec_file, ctx.info_file, base.blob, base.info], transitive = [depset(inputs)]),
        outputs = [layout, digest],
        mnemonic = "OciImage",
        progress_message = "Assembling OCI image %s" % ctx.label,
    )
    return [
        DefaultInfo(files = depset([layout, digest]), runfiles = ctx.runfiles(files = [layout, digest])),
        OciImageInfo(layout = layout, digest = digest, entrypoint = entrypoint),
    ]

oci_image = rule(
    implementation = _oci_image_impl,
    doc = "A py_binary's runfiles as an OCI image layout: the Debian base layer, then two " +
          "deterministic layers (third-party repositories, then this workspace), entrypoint the " +
          "binary's main under the base's interpreter (the `python` runtime). Labels: layer, target, base, git revision " +
          "(STABLE_GIT_COMMIT from --workspace_status_command, else `unknown`).",
    attrs = {
        "binary": attr.label(mandatory = True, executable = True, cfg = "target", doc = "The py_binary to package."),
        "main": attr.string(
            mandatory = True,
            doc = "The binary's main file, workspace-relative (it must be in the binary's runfiles).",
        ),
        "args": attr.string_list(doc = "The config's Cmd: default arguments after the entrypoint."),
        "ports": attr.int_list(doc = "TCP ports the config exposes."),
        "layer": attr.string(mandatory = True, doc = "The Chimera layer, for the `chimera.layer` label."),
        "labels": attr.string_dict(doc = "Extra config labels."),
        "user": attr.string(default = "65532:65532", doc = "The config's User, numeric uid:gid (distroless `nonroot`)."),
        "volumes": attr.string_list(
            doc = "Absolute directories the server writes to: empty, owned by `user`, listed as the " +
                  "config's Volumes (the rest of the image is root's and read-only to the server).",
        ),
        "base": attr.label(
            default = "//tools/oci:base",
            providers = [DebianLayerInfo],
            doc = "The base layer (debian_layer): the interpreter, its libraries, /etc/passwd.",
        ),
        "python": attr.label(
            default = "//tools/oci:base_python",
            providers = [PyRuntimeInfo],
            doc = "The py_runtime the image runs the binary with: an interpreter_path in the base layer.",
        ),
        "_builder": attr.label(
            default = "//tools/oci/private:build_image",
            executable = True,
            cfg = "exec",
        ),
    },
)
