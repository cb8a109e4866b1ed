"""Locates Debian's rustc by absolute path, checks its version, and registers it.

Whatever rustc comes first on PATH (rustup's, here) is never used: the
toolchain lives at fixed Debian paths and must report the pinned version.
"""

load("//tools/private:host_tools.bzl", "resolve_host_tool")

_DEBIAN_PACKAGES = "rustc libstd-rust-dev-wasm32 lld-14 rust-clippy rustfmt"
_SETUP = "Rust toolchain set-up"

# Tools the toolchain links into bin/ -> the Debian package behind each.
_TOOLS = {
    "clippy_driver": ("/usr/bin/clippy-driver", "rust-clippy"),
    "rustc": ("/usr/bin/rustc", "rustc"),
    "rustfmt": ("/usr/bin/rustfmt", "rustfmt"),
}

# rustc's wasm32 targets link with rust-lld, a link into lld-14.
_WASM_LINKER = ("/usr/bin/rust-lld", "lld-14")

_WASM_TRIPLES = ["wasm32-unknown-unknown", "wasm32-wasi"]

def _fail_setup(message):
    fail("\n\n%s: %s\nFix: run tools/bootstrap.sh (installs Debian packages: %s).\n" % (_SETUP, message, _DEBIAN_PACKAGES))

def _version_of(rctx, tool):
    result = rctx.execute([tool, "--version"])
    if result.return_code != 0:
        _fail_setup("`%s --version` failed: %s" % (tool, result.stderr.strip()))
    return result.stdout.strip()

# LLVM's profile runtime for -Cinstrument-coverage, from the Debian package of the
# compiler's LLVM version (optional: only coverage builds need it).
_PROFILE_RUNTIME = "/usr/lib/llvm-{major}/lib/clang/{version}/lib/linux/libclang_rt.profile-{arch}.a"

def _verbose_field(verbose_version, field):
    for line in verbose_version.splitlines():
        if line.startswith(field + ": "):
            return line[len(field) + 2:].strip()
    return ""

def _profile_runtime(rctx, rustc):
    """Links LLVM's profile runtime into lib/ and returns (its label or None, why missing)."""
    verbose = rctx.execute([rustc, "-vV"]).stdout
    llvm = _verbose_field(verbose, "LLVM version")
    arch = _verbose_field(verbose, "host").split("-")[0]
    if not llvm or not arch:
        return None, "`%s -vV` names no LLVM version or host" % rustc
    major = llvm.split(".")[0]
    path = _PROFILE_RUNTIME.format(major = major, version = llvm, arch = arch)
    if not rctx.path(path).exists:
        return None, (
            "%s is missing: Rust coverage needs LLVM %s's profile runtime (Debian package " +
            "libclang-rt-%s-dev; tools/bootstrap.sh --optional installs it), then " +
            "`bazel sync --only=rust_toolchain`"
        ) % (path, llvm, major)
    name = "lib/" + path.split("/")[-1]
    rctx.symlink(path, name)
    return name, ""

def _rust_toolchain_repository_impl(rctx):
    version = rctx.attr.version
    for path, package in _TOOLS.values() + [_WASM_LINKER]:
        resolve_host_tool(rctx, path, package, _SETUP)
    rustc = _TOOLS["rustc"][0]
    rustc_version = _version_of(rctx, rustc)
    if not rustc_version.startswith("rustc %s" % version):
        _fail_setup("%s reports `%s`, but Chimera pins rustc %s" % (rustc, rustc_version, version))

    sysroot = rctx.execute([rustc, "--print", "sysroot"]).stdout.strip()
    for triple in _WASM_TRIPLES:
        if not rctx.path("%s/lib/rustlib/%s/lib" % (sysroot, triple)).exists:
            _fail_setup("the %s standard library is missing from %s" % (triple, sysroot))

    linker = resolve_host_tool(rctx, "/usr/bin/cc", "gcc", _SETUP)
    profile_runtime, profile_runtime_missing = _profile_runtime(rctx, rustc)

    for name, (path, _package) in _TOOLS.items():
        rctx.symlink(path, "bin/" + name)

    rctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % rctx.name)
    rctx.template(
        "BUILD",
        rctx.attr._build_template,
        substitutions = {
            "{linker}": str(linker),
            "{profile_runtime}": repr(profile_runtime),
            "{profile_runtime_missing}": profile_runtime_missing,
            "{sysroot}": sysroot,
            "{version}": version,
        },
        executable = False,
    )

rust_toolchain_repository = repository_rule(
    implementation = _rust_toolchain_repository_impl,
    doc = "Wraps Debian's rustc, clippy-driver and rustfmt after checking the pinned version and the wasm32 std.",
    attrs = {
        "version": attr.string(mandatory = True, doc = "Exact rustc version, e.g. 1.63.0."),
        "_build_template": attr.label(default = "//tools/rust/private:toolchain.BUILD.tpl"),
    },
    # Re-checked when the machine's toolchain may have changed.
    environ = ["PATH"],
)

def rust_register_toolchains(version):
    """Creates @rust_toolchain and registers it.

    Args:
      version: the exact rustc version Chimera is pinned to.
    """
    rust_toolchain_repository(name = "rust_toolchain", version = version)
    native.register_toolchains("@rust_toolchain//:toolchain")
