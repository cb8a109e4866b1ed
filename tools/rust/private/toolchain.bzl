"""Rust toolchain rule: the compiler, linters and linker one build uses."""

def _rust_toolchain_impl(ctx):
    return [platform_common.ToolchainInfo(
        clippy_driver = ctx.file.clippy_driver,
        linker = ctx.attr.linker,
        profile_runtime = ctx.file.profile_runtime,
        profile_runtime_missing = ctx.attr.profile_runtime_missing,
        rustc = ctx.file.rustc,
        rustfmt = ctx.file.rustfmt,
        sysroot = ctx.attr.sysroot,
        version = ctx.attr.version,
    )]

rust_toolchain = rule(
    implementation = _rust_toolchain_impl,
    doc = """Declares a Rust toolchain.

Provides `platform_common.ToolchainInfo` with fields:
  rustc, clippy_driver, rustfmt: File, the tools (inputs of every action that runs them);
  linker: string, absolute path of the C compiler driver used to link native outputs;
  profile_runtime: File or None, LLVM's static profile runtime (libclang_rt.profile-*.a)
    for -Cinstrument-coverage, of the compiler's LLVM version;
  profile_runtime_missing: string, why profile_runtime is None;
  sysroot: string, the standard libraries' root, passed explicitly so clippy-driver
    never falls back to another toolchain's std;
  version: string, the rustc version (part of every compile action's key).
""",
    attrs = {
        "clippy_driver": attr.label(allow_single_file = True, mandatory = True),
        "linker": attr.string(mandatory = True),
        "profile_runtime": attr.label(allow_single_file = [".a"]),
        "profile_runtime_missing": attr.string(),
        "rustc": attr.label(allow_single_file = True, mandatory = True),
        "rustfmt": attr.label(allow_single_file = True, mandatory = True),
        "sysroot": attr.string(mandatory = True),
        "version": attr.string(mandatory = True),
    },
)
