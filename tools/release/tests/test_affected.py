"""`affected` on a generated git repository: each change kind the issue lists."""

from __future__ import annotations

import marshal
import pathlib
from typing import Any

import pytest

from chimera_release import cli
from fixture import FixtureRepo, release_args, run_main


@pytest.fixture(scope="module")
def initial(repo: FixtureRepo) -> str:
    return repo.head()


ALL_RULES = {"//lib:data", "//app:gen", "//app:bin", "//app:bin_test", "//app:stamp", "//app:py_numpy",
             "//app:py_six", "//app:py_chain", "//app:tooled", "//layers/layer9_demo:demo_core_module",
             "//layers/layer9_demo:server", "//layers/layer9_demo:server_test"}


def run_cli(workdir: pathlib.Path, repo: FixtureRepo, *args: str) -> tuple[int, Any, str]:
    return run_main(cli.main, release_args(workdir, repo, *args))


def change(workdir: pathlib.Path, repo: FixtureRepo, initial: str, edit) -> dict[str, Any]:
    """Applies `edit` on top of the initial tree, commits, returns affected(initial, new)."""
    repo.reset(initial)
    edit(repo)
    head = repo.commit("change")
    status, document, stderr = run_cli(workdir, repo, "affected", "--base", initial, "--head", head)
    assert status == 0, stderr
    return document


def by_label(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["label"]: t for t in document["affected"]}


def test_source_change_affects_dependents_only(workdir, repo, initial) -> None:
    doc = change(workdir, repo, initial, lambda r: r.replace("lib/data.txt", "v1", "v2"))
    targets = by_label(doc)
    assert set(targets) == {"//lib:data", "//app:bin", "//app:bin_test", "//layers/layer9_demo:demo_core_module",
                            "//layers/layer9_demo:server", "//layers/layer9_demo:server_test"}
    assert doc["layers"] == ["layer9_demo"]
    assert targets["//app:bin_test"]["reasons"] == [
        "//app:bin_test depends on //app:bin",
        "//app:bin depends on //lib:data",
        "//lib:data depends on //lib:data.txt",
        "source file lib/data.txt changed",
    ]


def test_attribute_change(workdir, repo, initial) -> None:
    doc = change(workdir, repo, initial, lambda r: r.replace("app/BUILD", 'args = ["--a"]', 'args = ["--b"]'))
    targets = by_label(doc)
    assert set(targets) == {"//app:bin", "//app:bin_test"}
    assert targets["//app:bin"]["reasons"] == ["attribute args of //app:bin changed"]


def test_macro_change_that_changes_generated_targets(workdir, repo, initial) -> None:
    doc = change(workdir, repo, initial, lambda r: r.replace("tools/macros.bzl", "cat $< > $@", "cp $< $@"))
    targets = by_label(doc)
    assert set(targets) == {"//app:gen", "//app:bin", "//app:bin_test", "//app:stamp"}
    assert targets["//app:gen"]["reasons"] == ["macro //tools:macros.bzl changed: attribute cmd of //app:gen changed"]
    assert targets["//app:stamp"]["reasons"][-1] == targets["//app:gen"]["reasons"][0]


def test_macro_change_that_leaves_targets_identical(workdir, repo, initial) -> None:
    def edit(r: FixtureRepo) -> None:
        r.write("tools/macros.bzl", "# Greeting macros.\n" + r.read("tools/macros.bzl") + "\n\ndef _unused():\n    pass\n")

    assert change(workdir, repo, initial, edit)["affected"] == []


def test_rule_implementation_change(workdir, repo, initial) -> None:
    doc = change(workdir, repo, initial, lambda r: r.replace("tools/rules.bzl", '"\\n".join', '",".join'))
    assert by_label(doc)["//app:stamp"]["reasons"] == ["rule stamp changed (//tools:rules.bzl changed)"]
    assert set(by_label(doc)) == {"//app:stamp"}


def test_flag_that_changes_no_action_affects_nothing(workdir, repo, initial) -> None:
    # No C++ is compiled in the target configuration: --copt reaches no action.
    doc = change(workdir, repo, initial, lambda r: r.write(".bazelrc", r.read(".bazelrc") + "build --copt=-O2\n"))
    assert doc["affected"] == []
    assert doc["timing"]["changed_flags"] == ["--copt"]


def test_action_env_reaches_the_actions_it_changes(workdir, repo, initial) -> None:
    doc = change(workdir, repo, initial,
                 lambda r: r.write(".bazelrc", r.read(".bazelrc") + "build --action_env=CHIMERA_CHANNEL=beta\n"))
    targets = by_label(doc)
    # Genrules run with the action environment (and what consumes their
    # outputs is affected); a py_library or a filegroup has no action to change.
    assert {"//app:gen", "//app:tooled", "//app:bin", "//app:stamp"} <= set(targets)
    assert not {"//lib:data", "//app:py_numpy", "//app:py_six", "//app:py_chain"} & set(targets)
    gen = targets["//app:gen"]["reasons"]
    assert gen == ["--action_env changed: reaches the Genrule bazel-out/k8-fastbuild/bin/app/gen.txt "
                   "action of //app:gen"], gen
    assert targets["//app:stamp"]["reasons"][-1] == gen[-1]


def test_test_flag_and_named_config_change(workdir, repo, initial) -> None:
    def edit(r: FixtureRepo) -> None:
        r.replace(".bazelrc", "--test_output=errors", "--test_output=all")
        r.replace(".bazelrc", "--noslim_profile", "--slim_profile")

    # --test_output changes how results are shown, no action; a named config
    # applies only with --config.
    assert change(workdir, repo, initial, edit)["affected"] == []


def test_test_env_reaches_test_actions_only(workdir, repo, initial) -> None:
    targets = by_label(change(workdir, repo, initial,
                              lambda r: r.write(".bazelrc", r.read(".bazelrc") + "test --test_env=MODE=fast\n")))
    assert set(targets) == {"//app:bin_test", "//layers/layer9_demo:server_test"}
    assert "--test_env (test) changed: reaches the TestRunner" in targets["//app:bin_test"]["reasons"][0]


def test_pinned_toolchain_change(workdir, repo, initial) -> None:
    doc = change(workdir, repo, initial, lambda r: r.replace("WORKSPACE", '"1.63.0"', '"1.64.0"'))
    targets = by_label(doc)
    assert set(targets) == {"//app:stamp", "//app:tooled", "//layers/layer9_demo:demo_core_module",
                            "//layers/layer9_demo:server", "//layers/layer9_demo:server_test"}
    assert targets["//app:stamp"]["reasons"] == ["toolchain fake_toolchain version 1.63.0 → 1.64.0"]
    assert targets["//app:tooled"]["reasons"][-1] == "toolchain fake_toolchain version 1.63.0 → 1.64.0"


def test_one_locked_wheel_change(workdir, repo, initial) -> None:
    def edit(r: FixtureRepo) -> None:
        r.replace("requirements_lock.txt", "numpy==2.4.6", "numpy==2.4.7")
        r.replace("requirements_lock.txt", "1111", "3333")

    targets = by_label(change(workdir, repo, initial, edit))
    assert set(targets) == {"//app:py_numpy"}
    assert targets["//app:py_numpy"]["reasons"] == [
        "//app:py_numpy depends on @pypi//:numpy", "locked wheel numpy 2.4.6 → 2.4.7"]


def test_wheel_reached_through_two_other_wheels(workdir, repo, initial) -> None:
    # //app:py_chain -> chain-top -> chain-middle -> chain-bottom (pip-compile's `# via`).
    targets = by_label(change(workdir, repo, initial,
                              lambda r: r.replace("requirements_lock.txt", "chain-bottom==1.0", "chain-bottom==1.1")))
    assert set(targets) == {"//app:py_chain", "//app:py_six"}
    assert targets["//app:py_chain"]["reasons"] == [
        "//app:py_chain depends on @pypi//:chain-top",
        "@pypi//:chain-top depends on @pypi//:chain-middle",
        "@pypi//:chain-middle depends on @pypi//:chain-bottom",
        "locked wheel chain-bottom 1.0 → 1.1",
    ]


def test_new_and_deleted_targets(workdir, repo, initial) -> None:
    def edit(r: FixtureRepo) -> None:
        r.replace("app/BUILD", 'py_library(name = "py_six", srcs = ["six_user.py"], deps = ["@pypi//:six"])', "")
        r.write("lib/BUILD", r.read("lib/BUILD") + 'filegroup(name = "more", srcs = ["data.txt"])\n')

    doc = change(workdir, repo, initial, edit)
    targets = by_label(doc)
    assert {label: t["status"] for label, t in targets.items()} == {"//app:py_six": "deleted", "//lib:more": "new"}
    assert doc["removed"] == ["//app:py_six"]
    assert targets["//app:py_six"]["reasons"] == ["deleted"]
    assert targets["//lib:more"]["reasons"] == ["new target"]


def test_build_file_comment_affects_nothing(workdir, repo, initial) -> None:
    def edit(r: FixtureRepo) -> None:
        r.write("app/BUILD", "# A comment that shifts every line.\n\n" + r.read("app/BUILD").replace(
            "sh_test(", "# the test\nsh_test("))

    assert change(workdir, repo, initial, edit)["affected"] == []


def test_explain_and_cache(workdir, repo, initial) -> None:
    repo.reset(initial)
    repo.replace("app/msg.txt", "hello", "bye")
    head = repo.commit("msg")
    status, doc, _ = run_cli(workdir, repo, "affected", "--base", initial, "--head", head, "--explain", "//app:bin")
    assert status == 0
    assert doc["reasons"][-1] == "source file app/msg.txt changed"
    assert doc["chain"][0]["changed_inputs"] == ["//app:gen"]
    status, doc, _ = run_cli(workdir, repo, "affected", "--base", initial, "--head", head)
    assert doc["timing"]["base_cached"] and doc["timing"]["head_cached"]
    status, doc, _ = run_cli(workdir, repo, "affected", "--base", initial, "--head", head, "--explain", "//lib:data")
    assert doc["affected"] is False and doc["reasons"] == []


def test_table_format(workdir, repo, initial) -> None:
    status, text, _ = run_cli(workdir, repo, "affected", "--base", initial, "--head", initial, "--format", "table")
    assert status == 0 and text.splitlines()[0].split() == ["target", "status", "kind", "root", "cause"]
    assert "0 affected" in text


@pytest.mark.parametrize("args, message", [
    (["--base", "no-such-rev"], "unknown revision 'no-such-rev'"),
    (["--base", "HEAD", "--head", "deadbeef"], "unknown revision 'deadbeef'"),
    (["--base", "HEAD", "--format", "xml"], "invalid choice: 'xml'"),
])
def test_bad_revisions_exit_2(workdir, repo, args, message) -> None:
    status, _, stderr = run_cli(workdir, repo, "affected", *args)
    assert status == 2 and message in stderr and stderr.count("\n") == 1


def test_dirty_tree_needs_allow_dirty(workdir, repo, initial) -> None:
    repo.reset(initial)
    repo.replace("lib/data.txt", "v1", "dirty")
    try:
        status, _, stderr = run_cli(workdir, repo, "affected", "--base", initial)
        assert status == 2 and "uncommitted changes" in stderr and stderr.count("\n") == 1
        status, doc, _ = run_cli(workdir, repo, "affected", "--base", initial, "--allow-dirty")
        assert status == 0 and doc["head"]["clean"] is False and "//lib:data" in by_label(doc)
    finally:
        repo.git("checkout", "--", ".")


def test_repository_outside_git(tmp_path) -> None:
    status, _, stderr = run_main(cli.main, ["affected", "--repo", str(tmp_path), "--base", "HEAD"])
    assert status == 2 and "not inside a git repository" in stderr and stderr.count("\n") == 1


def _tamper_digests(entry: pathlib.Path) -> None:
    """Rewrites a cache entry's payload, still valid marshal, every digest changed: a silent corruption."""
    data = entry.read_bytes()
    checksum, snapshot = data[:32], marshal.loads(data[32:])
    for node in snapshot.get("targets", {}).values():
        node["d"] = "0" * 20
    entry.write_bytes(checksum + marshal.dumps(snapshot))


@pytest.mark.parametrize("corrupt", [
    lambda entry: entry.write_bytes(b"\x00not marshal"),
    lambda entry: entry.write_bytes(entry.read_bytes()[:-7]),
    _tamper_digests,
], ids=["garbage", "truncated", "unmarshals-but-altered"])
def test_corrupt_cache_is_rebuilt_not_trusted(workdir, repo, initial, corrupt) -> None:
    repo.reset(initial)
    head = repo.commit("same tree")
    status, first, _ = run_cli(workdir, repo, "affected", "--base", initial, "--head", head)
    assert status == 0
    tree = repo.git("rev-parse", f"{head}^{{tree}}").strip()
    [entry] = (workdir / "cache" / "snapshots").glob(f"*/{tree}.marshal")  # base and head: one tree, one entry
    corrupt(entry)
    status, again, stderr = run_cli(workdir, repo, "affected", "--base", initial, "--head", head)
    assert status == 0 and stderr == f"release: cache entry {entry} is corrupt; rebuilding it\n"
    assert again["timing"]["base_cached"] is False and again["affected"] == first["affected"]
    status, cached, stderr = run_cli(workdir, repo, "affected", "--base", initial, "--head", head)
    assert status == 0 and stderr == "" and cached["timing"]["base_cached"] is True  # rebuilt, stored again


def test_cache_dir_that_is_a_file_exits_2(workdir, repo, initial) -> None:
    not_a_directory = workdir / "cache-file"
    not_a_directory.write_text("")
    status, _, stderr = run_main(cli.main, ["affected", "--repo", str(repo.root), "--cache-dir", str(not_a_directory),
                                            "--base", initial, "--head", initial])
    assert status == 2 and "not a directory" in stderr and stderr.count("\n") == 1


def test_explain_unknown_label_exits_2(workdir, repo, initial) -> None:
    status, _, stderr = run_cli(workdir, repo, "affected", "--base", initial, "--head", initial,
                                "--explain", "//no:such")
    assert status == 2 and "no such target" in stderr and stderr.count("\n") == 1


def test_own_output_base_and_server_shut_down(workdir, repo, initial) -> None:
    output_base = workdir / "ob"
    args = ["affected", "--repo", str(repo.root), "--cache-dir", str(workdir / "cache-ob"),
            "--output-base", str(output_base), "--base", initial, "--head", initial]
    status, _, stderr = run_main(cli.main, args)
    assert status == 0, stderr
    assert (output_base / "external").is_dir()  # the server lived there...
    pid_file = output_base / "server" / "server.pid.txt"
    assert not pid_file.exists()  # ...and was shut down, as it was this command's own
