"""The report on real, trimmed samples (tools/metrics/testdata/sample): a cold local
build with one failing test, and the same build from a fresh output base against a
remote cache. Expected sums were computed by hand from the raw files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tools.metrics.report import aspect, bep, compute, execlog, main, profile

SAMPLE = Path(os.environ.get("TEST_SRCDIR", ".")) / os.environ.get("TEST_WORKSPACE", "chimera") / "tools/metrics/testdata/sample"


def _report(scenario: str, with_exec_log: bool = True) -> dict:
    base = SAMPLE / scenario
    prof = profile.parse(base / "profile.json")
    spawns = execlog.parse(base / "exec_log.json") if with_exec_log else None
    if spawns is not None:
        prof = profile.with_executions(prof, execlog.executions(spawns))
    targets = aspect.load(aspect.find_files(base / "aspect"))
    return compute.compute(prof, bep.parse(base / "bep.json"), targets, spawns=spawns, jobs=2,
                           machine={"nproc": 2, "cpu_model": "test"})


def _raw_action_sum(scenario: str, layer_dir: str) -> float:
    """Independent check: sum of the layer's non-test, non-aspect action durations."""
    events = json.loads((SAMPLE / scenario / "profile.json").read_text())["traceEvents"]
    total = sum(
        e["dur"] for e in events
        if e.get("cat") == "action processing" and f"//layers/{layer_dir}:" in e["args"].get("target", "")
        and "/testlogs/" not in e.get("out", "") and "/_metrics/" not in e.get("out", "")
    )
    return round(total / 1e6, 3)


def test_local_build_per_layer_sums() -> None:
    r = _report("local")
    l1, l2 = r["layers"]["layer1"], r["layers"]["layer2"]
    assert l1["build_time_seconds"] == 0.449 == _raw_action_sum("local", "layer1_alpha")
    assert l2["build_time_seconds"] == 0.274 == _raw_action_sum("local", "layer2_beta")
    assert l1["test_time_seconds"] == 0.472
    assert l2["test_time_seconds"] == 0.297  # 0.252 passed + 0.045 failed
    assert l1["binary_size_mb"] == 0.005  # blob.bin, 5000 bytes, tagged deliverable
    assert l1["output_bytes"] == 5000 + 6 + 114
    assert (l1["status"], l2["status"]) == ("success", "failed")
    assert r["other_groups"]["tools"]["build_time_seconds"] == 0.045
    for n in range(3, 9):
        assert r["layers"][f"layer{n}"]["status"] == "missing"
    assert r["project_status"] == "1/8 layers built and tested (layer2 failed)"


def test_numbers_are_json_numbers_and_totals_add_up() -> None:
    r = _report("local")
    for layer in r["layers"].values():
        for key in ("build_time_seconds", "test_time_seconds", "binary_size_mb"):
            assert isinstance(layer[key], (int, float)) and not isinstance(layer[key], bool)
    t = r["total_times"]
    assert t["test_seconds"] == pytest.approx(0.472 + 0.297)
    assert t["critical_path_seconds"] == 0.865
    assert t["wall_time_seconds"] == 4.233
    s = r["system_metrics"]
    assert s["parallel_build_efficiency"] == pytest.approx(
        s["total_action_wall_time_seconds"] / (s["build_wall_time_seconds"] * 2), abs=1e-3)


def test_targets_detail_and_critical_path() -> None:
    r = _report("local")
    blob = r["targets"]["//layers/layer1_alpha:blob"]
    assert blob["build_time_seconds"] == 0.358
    assert blob["actions_executed"] == 1
    assert blob["kind"] == "genrule"
    assert blob["outputs"] == [{"path": "bazel-out/k8-fastbuild/bin/layers/layer1_alpha/blob.bin", "size_bytes": 5000}]
    broken = r["targets"]["//layers/layer2_beta:beta_broken_test"]
    assert (broken["status"], broken["test_status"]) == ("failed", "FAILED")
    steps = r["critical_path"]["components"]
    assert steps[-1]["target"] == "//layers/layer1_alpha:alpha_test"
    assert any(s["target"] == "//layers/layer1_alpha:blob" for s in steps)


def test_remote_cache_hits_are_counted_apart() -> None:
    r = _report("remote_cache")
    cache = r["cache"]
    assert cache["remote_cache_hits"] == 15  # "34 processes: 15 remote cache hit, ..."
    assert cache["spawns_cacheable"] == 17
    assert cache["hit_rate"] == round(15 / 17, 4)
    assert [m["progress_message"] for m in cache["misses"]] == ["Testing //layers/layer2_beta:beta_broken_test"] * 2
    assert cache["tests_cached_remotely"] == 2
    l1 = r["layers"]["layer1"]
    assert l1["status"] == "cached"
    assert l1["actions_executed"] == 0 and l1["actions_remote_cache_hit"] == 2
    assert l1["cached_action_time_seconds"] > 0
    assert r["targets"]["//layers/layer1_alpha:blob"]["build_time_seconds"] == 0.0


def test_profile_alone_detects_remote_hits() -> None:
    """Without the execution log the nested profile events classify each action."""
    with_log = _report("remote_cache")
    without = _report("remote_cache", with_exec_log=False)
    assert without["cache"]["actions_remote_cache_hit"] == with_log["cache"]["actions_remote_cache_hit"] == 13
    assert without["cache"]["hit_rate"] == round(15 / 17, 4)  # from bazel's process summary


def test_cli_writes_report_history_and_digests(tmp_path: Path) -> None:
    base = SAMPLE / "local"
    argv = ["--profile", str(base / "profile.json"), "--bep", str(base / "bep.json"),
            "--aspect-dir", str(base / "aspect"), "--out", str(tmp_path), "--no-dashboard", "--commit", "abc"]
    assert main.run(argv) == 0
    assert main.run(argv) == 0
    report = json.loads((tmp_path / "build_metrics.json").read_text())
    assert report["inputs"]["profile"]["sha256"] == __import__("hashlib").sha256((base / "profile.json").read_bytes()).hexdigest()
    assert report["inputs"]["aspect"]["files"] == 7
    lines = (tmp_path / "history.jsonl").read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["commit"] == "abc"
    assert "coverage_percent" not in json.loads(lines[0])["layers"]["layer1"]  # no coverage measured


def test_cli_rejects_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    base = SAMPLE / "local"
    assert main.run(["--profile", str(bad), "--bep", str(base / "bep.json"), "--aspect-dir", str(base / "aspect"),
                     "--out", str(tmp_path / "o")]) == 2
    assert main.run(["--profile", str(tmp_path / "missing.json"), "--bep", str(base / "bep.json"),
                     "--out", str(tmp_path / "o")]) == 2
    assert "bad input" in capsys.readouterr().err


def test_process_stats_parsing() -> None:
    assert bep.parse_process_stats("34 processes: 15 remote cache hit, 17 internal, 2 linux-sandbox.") == {
        "total": 34, "remote cache hit": 15, "internal": 17, "linux-sandbox": 2}
    assert bep.parse_process_stats("1 process: 1 internal.") == {"total": 1, "internal": 1}


def test_required_hit_rate_and_attachments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = SAMPLE / "remote_cache"
    status = tmp_path / "status.json"
    status.write_text('{"backend": "test", "cas_files": 97}')
    argv = ["--profile", str(base / "profile.json"), "--bep", str(base / "bep.json"), "--aspect-dir",
            str(base / "aspect"), "--exec-log", str(base / "exec_log.json"), "--out", str(tmp_path / "o"),
            "--no-dashboard", "--attach", f"remote_cache={status}"]
    assert main.run(argv + ["--require-hit-rate", "0.99"]) == 1
    err = capsys.readouterr().err
    assert "0.8824 < required 0.99" in err and "Testing //layers/layer2_beta:beta_broken_test" in err
    report = json.loads((tmp_path / "o/build_metrics.json").read_text())
    assert report["attachments"]["remote_cache"]["cas_files"] == 97
    assert report["cache"]["hit_rate_ok"] is False
    assert main.run(argv + ["--require-hit-rate", "0.88"]) == 0


def test_aspect_files_named_by_the_bep_resolve_locally_even_from_a_remote_cache() -> None:
    local = bep.parse(SAMPLE / "local" / "bep.json")
    remote = bep.parse(SAMPLE / "remote_cache" / "bep.json")
    assert len(local.aspect_files) == len(remote.aspect_files) == 7
    root = Path("/tmp/ob_sample/execroot/chimera/bazel-out/k8-fastbuild/bin")
    assert root / "layers/layer1_alpha/_metrics/blob.json" in remote.aspect_files  # bytestream:// URI
    assert {p.relative_to(root) for p in local.aspect_files} == {p.relative_to(root) for p in remote.aspect_files}


def test_cli_adds_per_layer_coverage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = SAMPLE / "local"
    coverage = tmp_path / "coverage.json"
    rust = tmp_path / "rust_coverage.json"
    coverage.write_text(json.dumps({"layers": {"layer1": {"coverage_percent": 91.25, "statements": 80, "covered": 73}}}))
    rust.write_text(json.dumps({"layers": {"layer1": {"coverage_percent": 50.0, "lines": 20, "covered": 10},
                                           "layer2": {"coverage_percent": 75.0, "lines": 40, "covered": 30}}}))
    argv = ["--profile", str(base / "profile.json"), "--bep", str(base / "bep.json"), "--aspect-dir", str(base / "aspect"),
            "--out", str(tmp_path / "out"), "--no-dashboard", "--coverage", str(coverage),
            "--rust-coverage", str(rust)]
    assert main.run(argv) == 0
    layers = json.loads((tmp_path / "out/build_metrics.json").read_text())["layers"]
    tracked = json.loads((tmp_path / "out/history.jsonl").read_text())["layers"]  # the trends plot it
    assert tracked["layer1"]["coverage_percent"] == layers["layer1"]["coverage_percent"]
    assert "coverage_percent" not in tracked["layer3"]  # not measured: no figure, not a zero
    assert layers["layer1"]["python_coverage_percent"] == 91.25
    assert layers["layer1"]["rust_coverage_percent"] == 50.0
    assert layers["layer1"]["coverage_percent"] == round(100 * (73 + 10) / (80 + 20), 2)
    assert layers["layer2"]["coverage_percent"] == 75.0 and "python_coverage_percent" not in layers["layer2"]
    coverage.write_text(json.dumps({"layers": {"layer1": {"coverage_percent": 140}}}))
    assert main.run(argv) == 2
    assert "layers.layer1.coverage_percent is not a percentage: 140" in capsys.readouterr().err


def test_remote_executions_are_counted_per_target_and_layer() -> None:
    """The local sample's actions relabelled as remote executions (as --config=remote's
    profile reports them): every executed action is then a remote one."""
    import dataclasses

    base = SAMPLE / "local"
    prof = profile.parse(base / "profile.json")
    remote_actions = [
        dataclasses.replace(a, execution=profile.REMOTE_EXECUTION) if a.execution == profile.LOCAL else a
        for a in prof.actions
    ]
    prof = dataclasses.replace(prof, actions=remote_actions)
    targets = aspect.load(aspect.find_files(base / "aspect"))
    r = compute.compute(prof, bep.parse(base / "bep.json"), targets, jobs=2, machine={"nproc": 2, "cpu_model": "test"})
    local = _report("local", with_exec_log=False)
    assert local["layers"]["layer1"]["actions_remote_executed"] == 0
    assert r["layers"]["layer1"]["actions_executed"] > 0
    for layer, row in r["layers"].items():
        if row["status"] == compute.MISSING:
            continue
        assert row["actions_remote_executed"] == row["actions_executed"] == local["layers"][layer]["actions_executed"]
    assert r["cache"]["actions_remote_executed"] == r["cache"]["actions_executed"]
    assert all(t["actions_remote_executed"] == t["actions_executed"] for t in r["targets"].values())


def test_bazels_test_xml_writer_is_not_counted_as_cacheable(tmp_path: Path) -> None:
    """Its command line carries the test's measured duration, so no other run can hit it."""
    log = tmp_path / "exec_log.json"
    spawn = {"mnemonic": "TestRunner", "runner": "linux-sandbox", "remoteCacheHit": False, "listedOutputs": ["x/test.xml"]}
    log.write_text(json.dumps({**spawn, "commandArgs": ["external/bazel_tools/tools/test/generate-xml.sh", "x/test.log", "x/test.xml", "3", "0"]})
                   + json.dumps({**spawn, "listedOutputs": ["x/test.log"], "commandArgs": ["x/test"]}))
    writer, test = execlog.parse(log)
    assert (writer.cacheable, test.cacheable) == (False, True)


def test_a_failed_build_never_replaces_the_last_good_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = SAMPLE / "local"
    argv = ["--profile", str(base / "profile.json"), "--bep", str(base / "bep.json"),
            "--aspect-dir", str(base / "aspect"), "--out", str(tmp_path), "--no-dashboard"]
    assert main.run(argv + ["--commit", "good"]) == 0
    good = (tmp_path / main.GOOD_REPORT).read_bytes()
    history_before = (tmp_path / "history.jsonl").read_bytes()

    assert main.run(argv + ["--commit", "bad", "--bazel-exit-status", "1"]) == 0
    assert (tmp_path / main.GOOD_REPORT).read_bytes() == good
    assert (tmp_path / "history.jsonl").read_bytes() == history_before
    failed = json.loads((tmp_path / main.FAILED_REPORT).read_text())
    assert failed["project_status"] == json.loads(good)["project_status"]  # the same build's figures
    assert "bazel exit status 1" in capsys.readouterr().out

    # The next good build replaces the good report and drops the stale failed one.
    assert main.run(argv + ["--commit", "good2"]) == 0
    assert not (tmp_path / main.FAILED_REPORT).exists()
    assert [json.loads(line)["commit"] for line in (tmp_path / "history.jsonl").read_text().splitlines()] == [
        "good", "good2"]


def test_a_failed_build_without_an_earlier_report_writes_only_the_failed_one(tmp_path: Path) -> None:
    base = SAMPLE / "local"
    assert main.run(["--profile", str(base / "profile.json"), "--bep", str(base / "bep.json"),
                     "--aspect-dir", str(base / "aspect"), "--out", str(tmp_path),
                     "--bazel-exit-status", "3"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [main.FAILED_REPORT]  # no history, no dashboard
