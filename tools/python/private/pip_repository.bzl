"""pip_parse: third-party Python packages from a hash-locked requirements file.

In the spirit of rules_python's pip_parse: every wheel in the lock is installed
(`--require-hashes --no-deps --only-binary=:all:`) into this external
repository, and each distribution becomes a py_library named after its
normalized project name, with its locked dependencies as deps. Use
`requirement("name")` from //tools/python:defs.bzl to refer to one.
"""

_LOCK_COMMAND = "tools/python/lock.sh"

def _pip_parse_impl(rctx):
    python = rctx.path(rctx.attr.python_interpreter_target).realpath
    lock = rctx.path(rctx.attr.requirements_lock)
    result = rctx.execute(
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--require-hashes",
            "--only-binary=:all:",
            "--no-compile",
            "--disable-pip-version-check",
            "--no-input",
            "--target",
            "site-packages",
            "--requirement",
            lock,
        ],
        timeout = rctx.attr.timeout,
        quiet = True,
    )
    if result.return_code != 0:
        _fail_install(rctx, result)

    generated = rctx.execute(
        [python, rctx.path(rctx.attr._build_generator), "site-packages", lock, str(rctx.attr.requirements_lock)],
    )
    if generated.return_code != 0:
        fail("pip_parse: generating the BUILD file failed:\n" + generated.stderr)
    rctx.file("BUILD", generated.stdout)
    rctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % rctx.name)

def _fail_install(rctx, result):
    lock = str(rctx.attr.requirements_lock)
    if "DO NOT MATCH THE HASHES" in result.stderr:
        fail(("\n\nPython packages: a downloaded wheel does not match its hash in %s.\n%s\n" +
              "Fix: if the lock was edited by hand, regenerate it with %s; otherwise the download was altered, do not bypass the check.\n") %
             (lock, _tail(result.stderr), _LOCK_COMMAND))
    if "hashes are required" in result.stderr.lower() or "--hash" in result.stderr:
        fail(("\n\nPython packages: %s has a requirement without a --hash pin.\n%s\nFix: regenerate it with %s.\n") %
             (lock, _tail(result.stderr), _LOCK_COMMAND))
    fail(("\n\nPython packages: pip could not install %s.\n%s\n" +
          "Fix: check access to PyPI (the only index this build uses), then rerun; regenerate the lock with %s after editing requirements.in.\n") %
         (lock, _tail(result.stderr), _LOCK_COMMAND))

def _tail(text, lines = 12):
    return "\n".join(text.strip().split("\n")[-lines:])

pip_parse = repository_rule(
    implementation = _pip_parse_impl,
    doc = "Installs a hash-locked requirements file into an external repository of py_library targets.",
    attrs = {
        "python_interpreter_target": attr.label(mandatory = True, allow_single_file = True, doc = "The pinned interpreter (e.g. @python3_11//:python)."),
        "requirements_lock": attr.label(mandatory = True, allow_single_file = True, doc = "requirements file with --hash pins for every package."),
        "timeout": attr.int(default = 1800, doc = "Seconds allowed for downloading and installing all wheels."),
        "_build_generator": attr.label(default = "//tools/python/private:pip_build.py", allow_single_file = True),
    },
)
