"""The one place that turns a crate description into a rustc command line."""

load(":providers.bzl", "CrateInfo", "DepInfo")

TOOLCHAIN_TYPE = "//tools/rust:toolchain_type"

# WASM modules ship to a sandbox where size and speed matter more than build time.
_WASM_RELEASE_FLAGS = [
    "-Copt-level=3",
    "-Ccodegen-units=1",
    "-Cpanic=abort",
]

_WASM_LINK_FLAGS = [
    "-Clto=fat",
    "-Cstrip=symbols",
]

_MODE_FLAGS = {
    "dbg": ["-Copt-level=0", "-Cdebuginfo=2"],
    "fastbuild": ["-Copt-level=0", "-Cdebuginfo=0"],
    "opt": ["-Copt-level=3", "-Cdebuginfo=0"],
}

# Link and lint actions get this fixed PATH (never the client's) so `cc` can find `ld`.
ACTION_ENV = {"PATH": "/usr/bin:/bin"}

def is_wasm(target_triple):
    return target_triple.startswith("wasm32")

def merge_deps(dep_targets):
    """Builds the DepInfo a crate with these direct dependencies compiles against.

    Args:
      dep_targets: targets providing CrateInfo and DepInfo.

    Returns:
      DepInfo
    """
    return DepInfo(
        direct_crates = [struct(name = d[CrateInfo].name, rlib = d[CrateInfo].output) for d in dep_targets],
        transitive_rlibs = depset(
            direct = [d[CrateInfo].output for d in dep_targets],
            transitive = [d[DepInfo].transitive_rlibs for d in dep_targets],
        ),
    )

def crate_name(kind, label, declared):
    """The crate name a rule compiles `label` under, refused at analysis when rustc would refuse it.

    Args:
      kind: the rule's name ("rust_library", ...), for the error message.
      label: the target's Label.
      declared: the `crate_name` attribute ("" when unset).

    Returns:
      `declared`, or the target name with '-' replaced by '_'.
    """
    name = declared or label.name.replace("-", "_")
    invalid = sorted({c: None for c in name.elems() if not (c.isalnum() or c == "_")}.keys())
    if invalid:
        fail("%s %s: invalid crate name '%s' (%s): use only ASCII letters, digits and '_'%s" % (
            kind,
            label,
            name,
            "its crate_name" if declared else "from the target name",
            "; found " + " ".join(["'%s'" % c for c in invalid]) if invalid else "",
        ))
    return name

def find_crate_root(kind, label, srcs, crate_root, crate_type):
    """Picks the crate root the way rules_rust does: explicit, then lib.rs/main.rs, then a lone source."""
    if crate_root:
        return crate_root
    wanted = "main.rs" if crate_type == "bin" else "lib.rs"
    candidates = [f for f in srcs if f.basename == wanted]
    if candidates:
        return sorted(candidates, key = _path_length)[0]
    if len(srcs) == 1:
        return srcs[0]
    fail("%s %s: cannot pick a crate root among %d sources: set crate_root (or add %s)" % (kind, label, len(srcs), wanted))

def _path_length(file):
    return len(file.path)

def rustc_args(ctx, toolchain, crate_info, profiler_runtime = None):
    """Command-line arguments common to compiling and linting one crate.

    Args:
      ctx: the rule context; its label seeds -Cmetadata.
      toolchain: the Rust toolchain.
      crate_info: CrateInfo of the crate being compiled.
      profiler_runtime: in coverage builds (see coverage.bzl), the profiler_builtins
        rlib that instrumented dependencies need on the search path.

    Returns:
      an Args object (without -o / --emit, which the caller adds).
    """
    args = ctx.actions.args()
    args.add(crate_info.root)
    args.add("--crate-name", crate_info.name)
    args.add("--crate-type", crate_info.type)
    args.add("--edition", crate_info.edition)
    args.add("--sysroot", toolchain.sysroot)
    if crate_info.is_test:
        args.add("--test")

    # Distinct symbol names for same-named crates from different packages.
    args.add("-Cmetadata=%d" % hash(str(ctx.label)))
    target_triple = crate_info.target_triple
    if target_triple:
        args.add("--target", target_triple)
    if is_wasm(target_triple):
        args.add_all(_WASM_RELEASE_FLAGS)
        if crate_info.type in ("cdylib", "bin"):
            args.add_all(_WASM_LINK_FLAGS)
    else:
        args.add_all(_MODE_FLAGS[ctx.var["COMPILATION_MODE"]])
        args.add("-Clinker=" + toolchain.linker)
    deps = crate_info.deps
    args.add_all(
        deps.transitive_rlibs,
        map_each = _search_path,
        uniquify = True,
        format_each = "-Ldependency=%s",
    )
    args.add_all(["--extern=%s=%s" % (c.name, c.rlib.path) for c in deps.direct_crates])
    if profiler_runtime:
        # Kind "all": rustc looks for the crate as one it injects here and as a
        # dependency of every instrumented rlib this crate uses.
        args.add("-Lall=" + profiler_runtime.dirname)
    args.add_all(crate_info.rustc_flags)
    return args

def _search_path(rlib):
    return rlib.dirname

def rustc_compile_action(ctx, toolchain, crate_info, profiler_runtime = None):
    """Registers the rustc action that produces `crate_info.output`.

    Args:
      ctx: the rule context (provides `_process_wrapper`).
      toolchain: the Rust toolchain.
      crate_info: CrateInfo of the crate to compile, output included.
      profiler_runtime: the profiler_builtins rlib (see coverage.bzl); instruments the
        crate for line coverage. Only compiles get it, never lint actions.
    """
    args = rustc_args(ctx, toolchain, crate_info, profiler_runtime)
    extra_inputs = []
    if profiler_runtime:
        args.add("-Cinstrument-coverage")
        extra_inputs.append(profiler_runtime)
    args.add("--emit=link")
    args.add("-o", crate_info.output)
    ctx.actions.run(
        executable = ctx.executable._process_wrapper,
        arguments = [toolchain.rustc.path, args],
        inputs = depset([crate_info.root] + extra_inputs, transitive = [crate_info.srcs, crate_info.deps.transitive_rlibs]),
        tools = [toolchain.rustc],
        outputs = [crate_info.output],
        env = dict(ACTION_ENV, RUSTC_VERSION = toolchain.version),
        mnemonic = "Rustc",
        progress_message = "Compiling Rust %s %s (%s)" % (crate_info.type, ctx.label, crate_info.target_triple or "host"),
    )
