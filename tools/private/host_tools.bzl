"""Host executables for repository rules: resolved through every link, or one clear failure.

A Debian package can install a link whose target belongs to another package
(`/usr/bin/rust-lld` from rustc points at lld-14's `lld`); the link exists but
the tool does not. Repository rules resolve every tool they hand to actions
here, so such a machine fails at load time with the package to install rather
than with a linker error deep inside the first action.
"""

def resolve_host_tool(rctx, path, package, setup):
    """Returns the real path of the executable at `path`.

    Args:
      rctx: the repository_ctx.
      path: absolute path of the executable, as actions would call it.
      package: the Debian package that provides the file the path resolves to.
      setup: what is being set up, e.g. "Rust toolchain set-up"; starts the message.

    Returns:
      The path with every link resolved.
    """
    resolved = rctx.path(path)
    if resolved.exists:
        return resolved.realpath
    target = rctx.execute(["readlink", "-m", path]).stdout.strip()
    if target and target != path:
        problem = "%s is a link to %s, which does not exist" % (path, target)
    else:
        problem = "%s is missing" % path
    fail("\n\n%s: %s (Debian package %s).\nFix: run tools/bootstrap.sh, or apt-get install %s.\n" % (setup, problem, package, package))
