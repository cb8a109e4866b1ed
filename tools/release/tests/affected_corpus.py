"""Mutation corpus for `release affected`, scored against Bazel's own configured action graph.

A small multi-language workspace (the fixture plus a Rust crate, a .proto, a
select() on a config_setting, a registered toolchain, a macro that loads a
helper .bzl) is committed once; each mutation is one commit on top of it.
For every mutation the tool's answer is compared with a ground truth built
from Bazel, not from the tool's own model:

  truth(label) = Merkle over the label's configured actions, each digested
                 from its action key and the digests of its input artifacts
                 (source files by content; derived files by their generating
                 action), over its source file's content, and over the truths
                 of its configured dependencies (`cquery deps(//...)`, select()
                 resolved).

The actions come from `aquery deps(//...) --include_aspects` in the
configuration of `bazel test` (.bazelrc's `test` lines passed as flags). A main
repository rule is truly affected when its truth differs, or when it exists at
only one revision. The run fails on any false negative, or when a kind's false
positives exceed its bound; it prints the table either way.

    python3 tools/release/tests/affected_corpus.py --workdir /tmp/corpus
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pathlib
import re
import shutil
import subprocess
import sys
import textwrap
import time
from typing import Callable

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from chimera_release import cli, workspace  # noqa: E402
from fixture import FILES, FixtureRepo, run_main  # noqa: E402

EXTRA_FILES: dict[str, str] = {
    "README.md": "# Corpus workspace\n",
    "tools/strings.bzl": 'GREETING_CMD = "cat $< > $@"\n',
    "tools/rust.bzl": """\
        def _rust_library_impl(ctx):
            out = ctx.actions.declare_file("lib" + ctx.label.name + ".rlib")
            compiler = ctx.toolchains["//toolchains:compiler_type"].compiler
            ctx.actions.run_shell(
                outputs = [out],
                inputs = ctx.files.srcs,
                command = "%s --crate-type=rlib -o %s %s" % (compiler, out.path, " ".join([f.path for f in ctx.files.srcs])),
                use_default_shell_env = True,
            )
            return [DefaultInfo(files = depset([out]))]

        rust_library = rule(
            implementation = _rust_library_impl,
            attrs = {"srcs": attr.label_list(allow_files = [".rs"])},
            toolchains = ["//toolchains:compiler_type"],
        )

        def _compiler_impl(ctx):
            return [platform_common.ToolchainInfo(compiler = ctx.attr.compiler)]

        compiler_toolchain = rule(implementation = _compiler_impl, attrs = {"compiler": attr.string()})
        """,
    "toolchains/BUILD": """\
        load("//tools:rust.bzl", "compiler_toolchain")

        toolchain_type(name = "compiler_type", visibility = ["//visibility:public"])

        compiler_toolchain(name = "rustc_stable", compiler = "rustc")

        compiler_toolchain(name = "rustc_pinned", compiler = "/usr/bin/rustc-1.63")

        toolchain(name = "stable", toolchain = ":rustc_stable", toolchain_type = ":compiler_type")

        toolchain(name = "pinned", toolchain = ":rustc_pinned", toolchain_type = ":compiler_type")
        """,
    "rust/BUILD": """\
        load("//tools:rust.bzl", "rust_library")

        rust_library(name = "core", srcs = ["lib.rs"], visibility = ["//visibility:public"])

        genrule(name = "core_wasm", srcs = [":core"], outs = ["core.wasm"], cmd = "cp $< $@")
        """,
    "rust/lib.rs": "pub fn answer() -> u32 { 42 }\n",
    "proto/BUILD": """\
        genrule(name = "api_py", srcs = ["api.proto"], outs = ["api_pb2.py"], cmd = "sed 's/^/# /' $< > $@")

        py_library(name = "api", srcs = [":api_py"], visibility = ["//visibility:public"])

        py_test(name = "api_test", srcs = ["api_test.py"], deps = [":api"])
        """,
    "proto/api.proto": 'syntax = "proto3";\nmessage Plan { string name = 1; }\n',
    "proto/api_test.py": "import api_pb2\n",
    "platform/BUILD": """\
        package_group(name = "friends", packages = ["//app/..."])

        config_setting(name = "optimized", values = {"compilation_mode": "opt"})

        genrule(
            name = "mode",
            outs = ["mode.txt"],
            cmd = select({":optimized": "echo fast > $@", "//conditions:default": "echo debug > $@"}),
        )

        filegroup(name = "shared", srcs = ["shared.txt"], visibility = [":friends"])
        """,
    "platform/shared.txt": "shared\n",
}


def corpus_files() -> dict[str, str]:
    files = dict(FILES)
    files["WORKSPACE"] = textwrap.dedent(FILES["WORKSPACE"]) + 'register_toolchains("//toolchains:stable")\n'
    files["tools/macros.bzl"] = 'load("//tools:strings.bzl", "GREETING_CMD")\n\n' + textwrap.dedent(
        FILES["tools/macros.bzl"]).replace('"cat $< > $@"', "GREETING_CMD")
    files["app/BUILD"] = textwrap.dedent(FILES["app/BUILD"]) + textwrap.dedent("""
        filegroup(name = "uses_shared", srcs = ["//platform:shared"])
        """)
    return {**files, **EXTRA_FILES}


Edit = Callable[[FixtureRepo], None]


def _append(path: str, text: str) -> Edit:
    return lambda r: r.write(path, r.read(path) + text)


def _replace(path: str, old: str, new: str) -> Edit:
    return lambda r: r.replace(path, old, new)


def _both(*edits: Edit) -> Edit:
    def edit(r: FixtureRepo) -> None:
        for one in edits:
            one(r)
    return edit


# (kind, edit, false-positive bound). Bounds are absolute counts; the flag kinds
# must also stay within 5 % of what is reported.
MUTATIONS: list[tuple[str, Edit, int]] = [
    ("Rust source", _replace("rust/lib.rs", "42", "43"), 0),
    ("Python source", _replace("layers/layer9_demo/server.py", "demo", "demo v2"), 0),
    (".proto field", _append("proto/api.proto", "message Grant { int64 id = 1; }\n"), 0),
    ("data file", _replace("lib/data.txt", "v1", "v2"), 0),
    # The stamp has one dependency, so the separator changes no byte: the rule's
    # implementation changed but its action did not (early cutoff, not modelled).
    (".bzl rule", _replace("tools/rules.bzl", '"\\n".join', '",".join'), 1),
    ("layer macro", _replace("tools/macros.bzl", 'outs = [name + ".txt"]', 'outs = [name + ".greeting.txt"]'), 0),
    ("deleted target", _replace("app/BUILD", 'py_library(name = "py_six", srcs = ["six_user.py"], deps = ["@pypi//:six"])', ""), 0),
    ("README", _append("README.md", "More words.\n"), 0),
    (".bazelrc --copt=-O1", _append(".bazelrc", "build --copt=-O1\n"), 0),
    (".bazelrc --action_env", _append(".bazelrc", "build --action_env=CHIMERA_CHANNEL=beta\n"), 0),
    ("lock: direct wheel", _both(_replace("requirements_lock.txt", "numpy==2.4.6", "numpy==2.4.7"),
                                 _replace("requirements_lock.txt", "1111", "3333")), 0),
    ("lock: wheel via two wheels", _replace("requirements_lock.txt", "chain-bottom==1.0", "chain-bottom==1.1"), 0),
    ("select()/config_setting", _replace("platform/BUILD", '"compilation_mode": "opt"', '"compilation_mode": "fastbuild"'), 1),
    ("toolchain registration", _replace("WORKSPACE", '"//toolchains:stable"', '"//toolchains:pinned"'), 0),
    ("package_group/visibility", _replace("platform/BUILD", '"//app/..."', '"//app/...", "//lib/..."'), 0),
    ("genrule cmd", _replace("app/BUILD", 'cmd = "touch $@"', 'cmd = "echo tooled > $@"'), 0),
    (".bzl loaded only by a macro", _replace("tools/strings.bzl", "cat $< > $@", "cp $< $@"), 0),
    (".bazelrc test --test_env", _append(".bazelrc", "test --test_env=MODE=fast\n"), 0),
]
FLAG_KINDS = {kind for kind, _, _ in MUTATIONS if kind.startswith(".bazelrc") or kind == "toolchain registration"}


class Truth:
    """Ground truth from Bazel at the corpus repository's current checkout."""

    def __init__(self, root: pathlib.Path, output_user_root: pathlib.Path) -> None:
        self.root = root
        self.bazel = ["bazel", f"--output_user_root={output_user_root}", "--max_idle_secs=120"]

    def _run(self, *args: str) -> str:
        result = subprocess.run([*self.bazel, *args], cwd=self.root, capture_output=True, text=True)
        if result.returncode != 0:
            errors = [line for line in result.stderr.splitlines() if "ERROR" in line][-3:]
            raise SystemExit(f"corpus: bazel {args[0]} failed: {'; '.join(errors) or result.stderr[-400:]}")
        return result.stdout

    def shutdown(self) -> None:
        subprocess.run([*self.bazel, "shutdown"], cwd=self.root, capture_output=True)

    def _content(self, path: pathlib.Path) -> str:
        if path.is_file():
            return hashlib.sha256(path.read_bytes()).hexdigest()
        if path.is_dir():
            return hashlib.sha256("\n".join(sorted(p.name for p in path.iterdir())).encode()).hexdigest()
        return "missing"

    def _source(self, output_base: pathlib.Path, path: str) -> str:
        return self._content(output_base / path if path.startswith("external/") else self.root / path)

    def _label_path(self, output_base: pathlib.Path, label: str) -> pathlib.Path:
        repository, _, rest = label.lstrip("@").partition("//") if label.startswith("@") else ("", "", label[2:])
        package, _, name = rest.partition(":")
        base = output_base / "external" / repository if repository else self.root
        return base / package / name

    def digests(self) -> dict[str, str]:
        """Main-repository rule label -> truth digest at the current checkout."""
        rc = workspace.parse_flags(lambda p: (self.root / p).read_bytes() if (self.root / p).is_file() else None)
        test_flags = workspace.test_arguments(rc)
        output_base = pathlib.Path(self._run("info", "output_base").strip())
        aquery = json.loads(self._run("aquery", "--output=jsonproto", "--include_aspects", "--include_artifacts",
                                      *test_flags, "deps(//...)"))
        graph = self._run("cquery", "--output=graph", "--nograph:factored", *test_flags, "deps(//...)")
        fragments = {f["id"]: f for f in aquery.get("pathFragments", [])}

        def path(fragment_id: int) -> str:
            parts = []
            while fragment_id:
                parts.append(fragments[fragment_id]["label"])
                fragment_id = fragments[fragment_id].get("parentId", 0)
            return "/".join(reversed(parts))

        artifacts = {a["id"]: path(a["pathFragmentId"]) for a in aquery.get("artifacts", [])}
        depsets = {d["id"]: d for d in aquery.get("depSetOfFiles", [])}
        labels = {t["id"]: t["label"] for t in aquery.get("targets", [])}
        actions = aquery.get("actions", [])
        producer = {output: index for index, action in enumerate(actions) for output in action.get("outputIds", [])}

        def inputs(action: dict) -> set[int]:
            seen, stack, files = set(), list(action.get("inputDepSetIds", [])), set()
            while stack:
                current = stack.pop()
                if current in seen:
                    continue
                seen.add(current)
                files.update(depsets[current].get("directArtifactIds", []))
                stack.extend(depsets[current].get("transitiveDepSetIds", []))
            return files

        action_digest: dict[int, str] = {}

        def digest_of(index: int) -> str:
            # Iterative post-order: action chains can be deep.
            stack = [(index, False)]
            while stack:
                current, expanded = stack.pop()
                if current in action_digest:
                    continue
                ids = sorted(inputs(actions[current]))
                pending = [producer[i] for i in ids if i in producer and producer[i] not in action_digest
                           and producer[i] != current]
                if pending and not expanded:
                    stack.append((current, True))
                    stack.extend((p, False) for p in pending)
                    continue
                # Named by path: artifact ids are numbered anew by every aquery.
                named = []
                for i in ids:
                    if i in producer and producer[i] != current:
                        named.append(f"{artifacts[i]}={action_digest.get(producer[i], 'cycle')}")
                    else:
                        named.append(f"{artifacts[i]}={self._source(output_base, artifacts[i])}")
                parts = [actions[current].get("actionKey", ""), *sorted(named)]
                action_digest[current] = hashlib.sha256("\0".join(parts).encode()).hexdigest()
            return action_digest[index]

        own: dict[str, list[str]] = {}
        for index, action in enumerate(actions):
            own.setdefault(labels[action["targetId"]], []).append(digest_of(index))
        edges: dict[str, set[str]] = {}
        is_source: set[str] = set()
        for line in graph.splitlines():
            nodes = re.findall(r'"([^"]+) \(([^)]*)\)"', line)
            for label, config in nodes:
                edges.setdefault(label, set())
                if config == "null":
                    is_source.add(label)
            if len(nodes) == 2:
                edges[nodes[0][0]].add(nodes[1][0])
        truth: dict[str, str] = {}
        for root in edges:
            stack = [(root, False)]
            on_path: set[str] = set()
            while stack:
                label, expanded = stack.pop()
                if label in truth:
                    continue
                if not expanded:
                    on_path.add(label)
                    stack.append((label, True))
                    stack.extend((d, False) for d in edges[label] if d not in truth and d not in on_path)
                    continue
                on_path.discard(label)
                parts = sorted(own.get(label, []))
                if label in is_source:
                    parts.append(self._content(self._label_path(output_base, label)))
                parts += sorted(f"{d}={truth.get(d, 'cycle')}" for d in edges[label])
                truth[label] = hashlib.sha256("\0".join(parts).encode()).hexdigest()
        return {label: d for label, d in truth.items() if label.startswith("//") and label not in is_source}


def run(workdir: pathlib.Path) -> tuple[list[dict], bool]:
    if workdir.exists():
        shutil.rmtree(workdir)
    repo = FixtureRepo(workdir / "repo", files={p: textwrap.dedent(t) for p, t in corpus_files().items()})
    initial = repo.head()
    truth = Truth(repo.root, workdir / "bz")
    common = ["--repo", str(repo.root), "--cache-dir", str(workdir / "cache"),
              "--bazel-output-user-root", str(workdir / "bz"), "--keep-bazel-server"]
    rows = []
    try:
        base_truth = truth.digests()
        for kind, edit, bound in MUTATIONS:
            started = time.monotonic()
            repo.reset(initial)
            edit(repo)
            head = repo.commit(kind)
            status, document, stderr = run_main(cli.main, ["affected", *common, "--base", initial, "--head", head])
            if status != 0:
                raise SystemExit(f"corpus: affected failed on {kind!r}: {stderr.strip()}")
            reported = {t["label"] for t in document["affected"]}
            head_truth = truth.digests()
            truly = {label for label in set(base_truth) | set(head_truth)
                     if base_truth.get(label) != head_truth.get(label)}
            false_negatives = sorted(truly - reported)
            false_positives = sorted(reported - truly)
            limit = bound
            if kind in FLAG_KINDS:
                limit = min(bound, int(0.05 * len(reported)))
            rows.append({"kind": kind, "truly_affected": len(truly), "reported": len(reported),
                         "false_negatives": false_negatives, "false_positives": false_positives,
                         "false_positive_bound": limit, "seconds": round(time.monotonic() - started, 1),
                         "ok": not false_negatives and len(false_positives) <= limit})
    finally:
        truth.shutdown()
        run_main(cli.main, ["affected", *common[:-1], "--base", initial, "--head", initial])  # stops the tool's server
    return rows, all(r["ok"] for r in rows)


def table(rows: list[dict]) -> str:
    lines = [f"{'mutation':<30} {'truly':>6} {'reported':>8} {'FN':>3} {'FP':>3} {'FP<=':>4} {'s':>5}  ok",
             "-" * 72]
    for r in rows:
        lines.append(f"{r['kind']:<30} {r['truly_affected']:>6} {r['reported']:>8} {len(r['false_negatives']):>3} "
                     f"{len(r['false_positives']):>3} {r['false_positive_bound']:>4} {r['seconds']:>5}  "
                     f"{'yes' if r['ok'] else 'NO'}")
        for label in r["false_negatives"]:
            lines.append(f"    missed: {label}")
        for label in r["false_positives"]:
            lines.append(f"    over-reported: {label}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, help="scratch directory (removed first); keep it short")
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args()
    rows, ok = run(pathlib.Path(args.workdir))
    print(table(rows))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"rows": rows, "ok": ok}, indent=2) + "\n")
    print(f"{len(rows)} mutation kinds; {'all within bounds, 0 false negatives' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
