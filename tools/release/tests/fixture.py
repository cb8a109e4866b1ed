"""A generated git repository holding a tiny Bazel workspace (genrules, sh and
one Starlark rule), plus helpers to change it one commit at a time."""

from __future__ import annotations

import contextlib
import io
import json
import pathlib
import subprocess
import textwrap
from typing import Any, Callable, Sequence

FILES: dict[str, str] = {
    "WORKSPACE": """\
        workspace(name = "fixture")

        # Bazel 4's WORKSPACE suffix would download these; offline, shims.
        local_repository(name = "rules_cc", path = "third_party/rules_cc")

        local_repository(name = "remote_coverage_tools", path = "third_party/coverage")

        load("//tools:repos.bzl", "fake_pip_repository", "fake_toolchain_repository")

        fake_toolchain_repository(name = "fake_toolchain", version = "1.63.0")

        fake_pip_repository(name = "pypi", requirements_lock = "//:requirements_lock.txt")
        """,
    ".bazelrc": """\
        common --override_repository=rules_java=/usr/share/bazel/rules/java
        common --override_repository=rules_proto=/usr/share/bazel/rules/proto
        common --override_repository=bazel_skylib=/usr/share/bazel/tools/skylib
        common --override_repository=platforms=/usr/share/bazel/tools/platforms
        build --spawn_strategy=local
        test --test_output=errors
        build:metrics --noslim_profile
        """,
    "third_party/coverage/WORKSPACE": 'workspace(name = "remote_coverage_tools")\n',
    "third_party/coverage/BUILD": """\
        filegroup(name = "coverage_report_generator", visibility = ["//visibility:public"])
        filegroup(name = "lcov_merger", visibility = ["//visibility:public"])
        """,
    "third_party/rules_cc/WORKSPACE": 'workspace(name = "rules_cc")\n',
    "third_party/rules_cc/BUILD": "",
    "third_party/rules_cc/cc/BUILD": "",
    "third_party/rules_cc/cc/defs.bzl": "".join(
        f"{name} = native.{name}\n"
        for name in ("cc_binary", "cc_import", "cc_library", "cc_proto_library", "cc_test", "cc_toolchain",
                     "cc_toolchain_suite", "fdo_prefetch_hints", "fdo_profile", "objc_import", "objc_library")
    ),
    ".gitignore": "/bazel-*\n",
    "BUILD": 'exports_files(["requirements_lock.txt"])\n',
    "requirements_lock.txt": """\
        numpy==2.4.6 \\
            --hash=sha256:1111111111111111111111111111111111111111111111111111111111111111
            # via -r requirements.in
        six==1.16.0 \\
            --hash=sha256:2222222222222222222222222222222222222222222222222222222222222222
        chain-top==1.0 \\
            --hash=sha256:4444444444444444444444444444444444444444444444444444444444444444
            # via -r requirements.in
        chain-middle==1.0 \\
            --hash=sha256:5555555555555555555555555555555555555555555555555555555555555555
            # via chain-top
        chain-bottom==1.0 \\
            --hash=sha256:6666666666666666666666666666666666666666666666666666666666666666
            # via
            #   chain-middle
            #   six
        """,
    "tools/BUILD": "",
    "tools/repos.bzl": """\
        def _toolchain_impl(rctx):
            rctx.file("BUILD", 'filegroup(name = "bin", srcs = [], visibility = ["//visibility:public"])\\n')

        fake_toolchain_repository = repository_rule(
            implementation = _toolchain_impl,
            attrs = {"version": attr.string()},
        )

        def _pip_impl(rctx):
            # One py_library per pin of the lock, depending on the pins it
            # requires (the inverse of pip-compile's `# via`), its one file
            # holding the pin: what a real hub builds from the wheels.
            pins, via, current, in_via = [], {}, None, False
            for line in rctx.read(rctx.attr.requirements_lock).splitlines():
                text = line.strip()
                if "==" in text and not text.startswith("#"):
                    current = text.split("==")[0].lower()
                    pins.append(current)
                    via[current] = []
                    in_via = False
                    rctx.file(current + "/pin.py", "PIN = %r\\n" % text)
                elif text.startswith("--hash") and current:
                    rctx.file(current + "/pin.py", rctx.read(current + "/pin.py") + "HASH = %r\\n" % text)
                elif text.startswith("# via"):
                    rest = text[len("# via"):].strip()
                    in_via = not rest
                    if rest and not rest.startswith("-"):
                        via[current].append(rest)
                elif in_via and text.startswith("#   "):
                    name = text[len("#   "):].strip()
                    if not name.startswith("-"):
                        via[current].append(name)
            build = []
            for name in pins:
                deps = [":" + other for other in pins if name in via[other]]
                build.append('py_library(name = "%s", srcs = ["%s/pin.py"], deps = %r, visibility = ["//visibility:public"])' % (name, name, deps))
            rctx.file("BUILD", "\\n".join(build) + "\\n")

        fake_pip_repository = repository_rule(
            implementation = _pip_impl,
            attrs = {"requirements_lock": attr.label()},
        )
        """,
    "tools/macros.bzl": """\
        def greeting(name, src):
            native.genrule(
                name = name,
                srcs = [src],
                outs = [name + ".txt"],
                cmd = "cat $< > $@",
            )
        """,
    "tools/rules.bzl": """\
        def _stamp_impl(ctx):
            out = ctx.actions.declare_file(ctx.label.name + ".stamp")
            ctx.actions.write(out, "\\n".join([f.path for f in ctx.files.deps]))
            return [DefaultInfo(files = depset([out]))]

        stamp = rule(implementation = _stamp_impl, attrs = {"deps": attr.label_list(allow_files = True)})
        """,
    "tools/wasm.bzl": """\
        def _wasm_impl(ctx):
            out = ctx.actions.declare_file(ctx.label.name + ".wasm")
            ctx.actions.write(out, "\\0asm module " + ctx.label.name)
            return [DefaultInfo(files = depset([out]), runfiles = ctx.runfiles(files = [out]))]

        # Stands in for //tools/rust:defs.bzl's rule of the same name.
        rust_wasm_module = rule(implementation = _wasm_impl, attrs = {"srcs": attr.label_list(allow_files = True)})
        """,
    "layers/layer9_demo/BUILD": """\
        load("//tools:wasm.bzl", "rust_wasm_module")

        rust_wasm_module(name = "demo_core_module", srcs = ["//lib:data"])

        py_binary(name = "server", srcs = ["server.py"], data = [":demo_core_module"], visibility = ["//visibility:public"])

        sh_test(name = "server_test", srcs = ["server_test.sh"], data = [":server"])
        """,
    "layers/layer9_demo/server.py": "print('demo')\n",
    "layers/layer9_demo/server_test.sh": "#!/bin/sh\nexit 0\n",
    "lib/BUILD": """\
        filegroup(name = "data", srcs = ["data.txt"], visibility = ["//visibility:public"])
        """,
    "lib/data.txt": "data v1\n",
    "app/BUILD": """\
        load("//tools:macros.bzl", "greeting")
        load("//tools:rules.bzl", "stamp")

        greeting(name = "gen", src = "msg.txt")

        sh_binary(name = "bin", srcs = ["bin.sh"], data = [":gen", "//lib:data"], args = ["--a"])

        sh_test(name = "bin_test", srcs = ["bin.sh"], data = [":bin"])

        stamp(name = "stamp", deps = [":gen"])

        py_library(name = "py_numpy", srcs = ["numpy_user.py"], deps = ["@pypi//:numpy"])

        py_library(name = "py_six", srcs = ["six_user.py"], deps = ["@pypi//:six"])

        py_library(name = "py_chain", srcs = ["chain_user.py"], deps = ["@pypi//:chain-top"])

        genrule(name = "tooled", outs = ["tooled.txt"], cmd = "touch $@", tools = ["@fake_toolchain//:bin"])
        """,
    "app/msg.txt": "hello\n",
    "app/bin.sh": "#!/bin/sh\nexit 0\n",
    "app/numpy_user.py": "",
    "app/six_user.py": "",
    "app/chain_user.py": "",
}


# An image of the demo server, as //tools/oci packages each layer's (added by the
# tests that need it: it joins the demo server's reverse dependencies).
IMAGE_FILES: dict[str, str] = {
    "tools/oci/BUILD": """\
        load("//tools:oci.bzl", "oci_image")

        oci_image(name = "layer9_demo", binary = "//layers/layer9_demo:server")
        """,
    "tools/oci.bzl": """\
        def _oci_impl(ctx):
            layout = ctx.actions.declare_directory(ctx.label.name)
            digest = ctx.actions.declare_file(ctx.label.name + ".digest")
            runfiles = ctx.attr.binary[DefaultInfo].default_runfiles.files.to_list()
            ctx.actions.run_shell(
                outputs = [layout, digest],
                inputs = runfiles,
                arguments = [layout.path, digest.path] + [f.path for f in runfiles],
                command = \"\"\"set -e; out=$1 digest=$2; shift 2; mkdir -p $out/blobs/sha256
        for content in "config" "$(cat "$@")"; do
          printf '%s' "$content" > $out/blob; h=$(sha256sum $out/blob | cut -d' ' -f1); mv $out/blob $out/blobs/sha256/$h
        done
        printf 'manifest %s' "$h" > $out/blob; h=$(sha256sum $out/blob | cut -d' ' -f1); mv $out/blob $out/blobs/sha256/$h
        printf '{"manifests": [{"digest": "sha256:%s"}]}' $h > $out/index.json; echo sha256:$h > $digest\"\"\",
            )
            return [DefaultInfo(files = depset([layout, digest]))]

        # Stands in for //tools/oci:defs.bzl's rule of the same name: a layout
        # (config, one layer of the binary's runfiles, manifest) and its digest.
        oci_image = rule(implementation = _oci_impl, attrs = {"binary": attr.label(executable = True, cfg = "target")})
        """,
}


class FixtureRepo:
    """The fixture (or another set of files) as a git repository; each change is one commit."""

    def __init__(self, root: pathlib.Path, files: dict[str, str] | None = None) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.email", "fixture@example.invalid")
        self.git("config", "user.name", "fixture")
        for path, text in (FILES if files is None else files).items():
            self.write(path, textwrap.dedent(text))
        self.commit("initial")

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.root, check=True, capture_output=True, text=True).stdout

    def write(self, path: str, text: str) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def read(self, path: str) -> str:
        return (self.root / path).read_text()

    def replace(self, path: str, old: str, new: str) -> None:
        text = self.read(path)
        if old not in text:
            raise AssertionError(f"{old!r} not in {path}")
        self.write(path, text.replace(old, new, 1))

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    def reset(self, commit: str) -> None:
        """Puts the working tree back to `commit` (as a new commit, history kept)."""
        self.git("read-tree", "-u", "--reset", commit)
        self.commit(f"back to {commit[:8]}")


def run_main(main: Callable[[Sequence[str]], int], args: Sequence[str]) -> tuple[int, Any, str]:
    """Runs the CLI in-process: (exit status, stdout as JSON when it is JSON else text, stderr)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = main(list(args))
    text = stdout.getvalue()
    return status, (json.loads(text) if text.startswith("{") else text), stderr.getvalue()


def release_args(workdir: pathlib.Path, repo: FixtureRepo, command: str, *args: str) -> list[str]:
    """A command against the fixture, with its cache and Bazel output root under `workdir`."""
    return [command, "--repo", str(repo.root), "--cache-dir", str(workdir / "cache"),
            "--bazel-output-user-root", str(workdir / "bz"), "--keep-bazel-server", *args]


def shutdown_bazel(workdir: pathlib.Path) -> None:
    """Stops the Bazel servers the tests started (the fixture's and its exports')."""
    for workspace in [workdir / "repo", *(workdir / "cache" / "checkouts").glob("*/src")]:
        if workspace.is_dir():
            subprocess.run(["bazel", f"--output_user_root={workdir / 'bz'}", "shutdown"], cwd=workspace,
                           check=False, capture_output=True)
