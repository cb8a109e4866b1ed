"""pip_parse and whl_library: third-party Python packages from a hash-locked requirements file.

In the spirit of rules_python's hub + whl_library:

- `pip_parse(name = "pypi", ...)` creates the hub `@pypi` from the lock alone
  (nothing is downloaded): `@pypi//:<name>` aliases for every distribution and
  `@pypi//:requirements.bzl`, whose `install_deps()` declares the wheels;
- each `whl_library` (`@pypi_<name>`) installs one distribution with
  `pip install --no-deps --require-hashes --only-binary=:all:` of its own
  locked line and hashes, as the py_library `pkg` whose deps are the locked
  distributions its metadata requires.

Bazel fetches a wheel's repository only when a build reaches it, and a changed
pin changes only that wheel's `requirement`, so only that wheel is fetched
again. Use `requirement("name")` from //tools/python:defs.bzl to refer to one.

Installed wheels are cached outside the output base, as Bazel's repository
cache keeps downloads: installing and byte-compiling the 88 locked wheels is
most of a new output base's first minute (a second clone, a CI runner). An
entry is a tar of the repository (site-packages and BUILD) named by the
wheel's locked sha256, the interpreter's version and a digest of the
requirement, the BUILD generator and `_INSTALL_FORMAT` (bumped when the
install steps below change), so it is only reused for exactly what it would
install. Like pip's own cache it is trusted as written: nothing re-verifies
an entry. It lives in $CHIMERA_WHEEL_CACHE (default
~/.cache/chimera/installed-wheels; `off` disables it) and may be deleted at
any time.
"""

_LOCK_COMMAND = "tools/python/lock.sh"

def _pip_parse_impl(rctx):
    python = rctx.path(rctx.attr.python_interpreter_target).realpath
    lock = rctx.path(rctx.attr.requirements_lock)
    generated = rctx.execute([
        python,
        rctx.path(rctx.attr._hub_generator),
        lock,
        str(rctx.attr.requirements_lock),
        rctx.name,
        str(rctx.attr.python_interpreter_target),
        rctx.path("."),
    ])
    if generated.return_code != 0:
        fail(("\n\nPython packages: %s\nFix: regenerate the lock with %s.\n") % (generated.stderr.strip(), _LOCK_COMMAND))
    rctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % rctx.name)

pip_parse = repository_rule(
    implementation = _pip_parse_impl,
    doc = "The hub of a hash-locked requirements file: aliases and install_deps() for one whl_library per distribution.",
    attrs = {
        "python_interpreter_target": attr.label(mandatory = True, allow_single_file = True, doc = "The pinned interpreter (e.g. @python3_11//:python)."),
        "requirements_lock": attr.label(mandatory = True, allow_single_file = True, doc = "requirements file with == and --hash pins for every package."),
        "_hub_generator": attr.label(default = "//tools/python/private:pip_hub.py", allow_single_file = True),
    },
)

# Bump when the installed layout changes in a way the key below does not see.
_INSTALL_FORMAT = "1"

def _wheel_cache_entry(rctx, python):
    """The cache tar for this requirement and interpreter, or None when the
    cache is off. Its name holds everything the installed tree depends on."""
    environ = rctx.os.environ
    root = environ.get("CHIMERA_WHEEL_CACHE", "")
    if root == "off":
        return None
    if not root:
        home = environ.get("XDG_CACHE_HOME") or (environ.get("HOME", "") + "/.cache")
        root = home + "/chimera/installed-wheels"
    version = rctx.execute([python, "-c", "import sys; print(sys.version.split()[0])"])
    if version.return_code != 0:
        return None
    hashes = [part.split(":", 1)[1] for part in rctx.attr.requirement.split(" ") if part.startswith("--hash=sha256:")]
    if not hashes:
        return None  # pip fails on the missing pin below, with its own message
    inputs = "\n".join([
        _INSTALL_FORMAT,
        rctx.attr.requirement,
        " ".join(rctx.attr.pip_options),
        rctx.attr.distribution,
        rctx.attr.hub,
        rctx.attr.lock_label,
        rctx.read(rctx.attr._build_generator),
    ])
    return "%s/%s-%s-py%s-%d.tar" % (root, rctx.attr.distribution, hashes[0][:24], version.stdout.strip(), hash(inputs) % 4294967296)

def _whl_library_impl(rctx):
    python = rctx.path(rctx.attr.python_interpreter_target).realpath
    rctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % rctx.name)
    entry = _wheel_cache_entry(rctx, python)
    if entry and rctx.path(entry).exists:
        rctx.report_progress("installed %s from %s" % (rctx.attr.distribution, entry))
        rctx.extract(entry)
        return
    _install(rctx, python)
    if entry:
        # Written beside the entry and renamed into place: a concurrent fetch
        # never reads half an entry. A failure to store is not a build failure.
        stored = rctx.execute([python, rctx.path(rctx.attr._cache_writer), entry, "site-packages", "BUILD"], quiet = True)
        if stored.return_code != 0:
            print("Python packages: not cached (%s): %s" % (entry, _tail(stored.stderr, 2)))

def _install(rctx, python):
    """pip install, byte-compile and generate the BUILD file of the wheel."""
    rctx.file("requirement.txt", "\n".join(rctx.attr.pip_options + [rctx.attr.requirement]) + "\n")
    rctx.report_progress("pip install %s" % rctx.attr.requirement.split(" ")[0])
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
            "requirement.txt",
        ],
        timeout = rctx.attr.timeout,
        quiet = True,
    )
    if result.return_code != 0:
        _fail_install(rctx, result)

    # Bytecode compiled once here: the runfiles are read-only, so otherwise
    # every test process compiles the imports again (seconds for JAX, scipy).
    # Hash-checked .pyc files do not depend on file times, so the repository
    # stays the same wherever it is fetched.
    compiled = rctx.execute(
        [python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", "site-packages"],
        timeout = rctx.attr.timeout,
        quiet = True,
    )
    if compiled.return_code != 0:
        fail("\n\nPython packages: compiling %s failed:\n%s\n" % (rctx.attr.distribution, _tail(compiled.stdout + compiled.stderr)))

    generated = rctx.execute([
        python,
        rctx.path(rctx.attr._build_generator),
        "site-packages",
        rctx.attr.distribution,
        rctx.attr.hub,
        rctx.attr.lock_label,
    ])
    if generated.return_code != 0:
        fail("\n\nPython packages: generating the BUILD file of %s failed: %s\n" % (rctx.attr.distribution, generated.stderr.strip()))
    rctx.file("BUILD", generated.stdout)
    rctx.delete("requirement.txt")  # a repository from the cache has only site-packages and BUILD

def _fail_install(rctx, result):
    lock = rctx.attr.lock_label
    wheel = rctx.attr.requirement.split(" ")[0]
    if "DO NOT MATCH THE HASHES" in result.stderr:
        fail(("\n\nPython packages: the downloaded wheel of %s does not match its hash in %s.\n%s\n" +
              "Fix: if the lock was edited by hand, regenerate it with %s; otherwise the download was altered, do not bypass the check.\n") %
             (wheel, lock, _tail(result.stderr), _LOCK_COMMAND))
    if "hashes are required" in result.stderr.lower() or "--hash" in result.stderr:
        fail(("\n\nPython packages: %s has a requirement without a --hash pin (%s).\n%s\nFix: regenerate it with %s.\n") %
             (lock, wheel, _tail(result.stderr), _LOCK_COMMAND))
    fail(("\n\nPython packages: pip could not install %s from %s.\n%s\n" +
          "Fix: check access to PyPI (the only index this build uses), then rerun; regenerate the lock with %s after editing requirements.in.\n") %
         (wheel, lock, _tail(result.stderr), _LOCK_COMMAND))

def _tail(text, lines = 12):
    return "\n".join(text.strip().split("\n")[-lines:])

whl_library = repository_rule(
    implementation = _whl_library_impl,
    doc = "One locked distribution, installed from its own hash-pinned requirement; declared by a hub's install_deps().",
    attrs = {
        "distribution": attr.string(mandatory = True, doc = "PEP 503 normalized project name."),
        "hub": attr.string(mandatory = True, doc = "The pip_parse hub whose locked.bzl resolves this wheel's deps."),
        "lock_label": attr.string(mandatory = True, doc = "The lock this requirement comes from, for messages."),
        "pip_options": attr.string_list(doc = "The lock's index options (--index-url, --find-links, ...)."),
        "python_interpreter_target": attr.label(mandatory = True, allow_single_file = True, doc = "The pinned interpreter (e.g. @python3_11//:python)."),
        "requirement": attr.string(mandatory = True, doc = "`name==version --hash=sha256:... ...`, as locked."),
        "timeout": attr.int(default = 900, doc = "Seconds allowed for downloading and installing the wheel."),
        "_build_generator": attr.label(default = "//tools/python/private:pip_build.py", allow_single_file = True),
        "_cache_writer": attr.label(default = "//tools/python/private:wheel_cache_store.py", allow_single_file = True),
    },
)
