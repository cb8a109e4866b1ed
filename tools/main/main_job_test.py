"""The main job end to end: eight real layer servers as subprocesses, the plan, then
the closed loop on the same stack (a small budget; tools/loop's test checks the loop's
verdicts), one summary."""

from __future__ import annotations

import json
import os
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import main_job
from tools.main import stack

#: The loop's smallest sensible budget: OR-like instances of 200 items, one generation of
#: 8 genomes on 4 instances, and the bad fixture as the canary, so the verdict is pinned.
TINY_LOOP = [
    "--families", "or", "--items", "200", "--population", "8", "--generations", "1",
    "--train-instances", "4", "--window", "8", "--generalisation-instances", "0",
    "--force-candidate", "bad-fixture",
]


def health_of(layers: stack.LayerStack) -> dict[str, str]:
    """Each layer's answer to grpc.health.v1.Health/Check for its own service."""
    answers = {}
    for name, server in layers.servers.items():
        with grpc.insecure_channel(server.target) as channel:
            request = health_pb2.HealthCheckRequest(service=server.spec.health_service)
            reply = health_pb2_grpc.HealthStub(channel).Check(request, timeout=10)
        answers[name] = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return answers


def test_main_job_runs_the_loop_and_writes_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Health as each layer reports it over gRPC, asked when the loop starts (after the plan).
    health_at_loop_start: dict[str, str] = {}
    run = main_job.run

    def observing_run(args, on_loop_phase=None):  # noqa: ANN001, ANN202 (main_job.run's own)
        def observe(phase: str, layers: stack.LayerStack) -> None:
            if not health_at_loop_start:
                health_at_loop_start.update(health_of(layers))
            if on_loop_phase is not None:
                on_loop_phase(phase, layers)

        return run(args, observe)

    monkeypatch.setattr(main_job, "run", observing_run)
    summary_path = tmp_path / "out" / "summary.json"
    run_dir = tmp_path / "run"
    status = main_job.main(
        [
            "--summary-out",
            str(summary_path),
            "--run-dir",
            str(run_dir),
            "--tasks",
            "6",
            "--jobs",
            "30",
            *TINY_LOOP,
        ]
    )
    out, err = capsys.readouterr()
    assert status == 0, err
    summary = json.loads(summary_path.read_text())
    assert summary["ok"] is True and summary["reason"] == ""

    # Eight layers answered SERVING over the health RPC mid-run, each a process of its own
    # that stopped cleanly on SIGTERM.
    layers = summary["layers"]
    assert sorted(layers) == sorted(layer.name for layer in stack.LAYERS)
    assert len(layers) == 8
    assert health_at_loop_start == {name: "SERVING" for name in layers}
    assert all(info["exit_status"] == 0 for info in layers.values())
    assert len({info["target"] for info in layers.values()}) == 8
    assert len({info["metrics_port"] for info in layers.values()}) == 8
    assert summary["startup_s"] > 0 and summary["elapsed_s"] > summary["startup_s"]
    for info in layers.values():
        assert Path(info["log"]).parent == run_dir and Path(info["log"]).stat().st_size > 0

    # Layer 1 saw this host's cores; layer 2 sized the plan from them.
    usable = len(os.sched_getaffinity(0))
    assert summary["discovery"]["cores_usable"] == usable
    plan = summary["planning"]
    assert plan["tasks"] and plan["critical_path"]
    assert {"validate_module", "deploy_module", "run_module"} <= set(plan["operations"])
    assert plan["cpu_cores_per_task"] == usable
    assert "capacity.unknown" not in plan["risks"]

    # Layer 3's verdicts; layer 4 deployed exactly the validated module through the gate.
    assert summary["validation"]["plan"]["is_valid"] is True
    module = summary["validation"]["module"]
    assert module["is_valid"] is True
    execution = summary["execution"]
    assert execution["verdict_id"] == module["verdict_id"]
    assert execution["module_sha256"] == module["sha256"]
    assert execution["version"] >= 1

    # The workload: every task succeeded on its genome, every KPI arrived, quality improved.
    workload = summary["workload"]
    assert [g["genome_id"] for g in workload["genomes"]] == ["default-best-fit", "reference-good"]
    for genome in workload["genomes"]:
        assert genome["statuses"] == {"SUCCEEDED": 6}
        assert genome["kpi_reports"] == 6 and genome["mean_fuel"] > 0
    assert workload["kpi_received"] == workload["kpi_expected"] == 12
    assert [s["genome_id"] for s in workload["swaps"]] == ["default-best-fit", "reference-good"]
    assert workload["quality_improvement"] > 0
    assert workload["failures"] == []

    # Then the closed loop on the same stack: its summary keeps the loop's own shape.
    loop = summary["closed_loop"]
    assert loop["ok"] is True and loop["reason"] == "", loop
    assert {"families", "scoreboard", "phases_s", "elapsed_s", "ok", "reason"} <= set(loop)
    family = loop["families"]["or"]
    assert {
        "baseline", "trigger", "resources", "strategy", "evolution", "canary", "ab_test",
        "outcome", "evaluations", "phases_s", "elapsed_s",
    } <= set(family)
    assert [g["generation"] for g in family["evolution"]["generations"]] == [0]
    assert family["evolution"]["population"] == 8
    # The forced bad fixture loses the paired A/B test and is rolled back.
    assert family["outcome"]["decision"] == "ROLL_BACK"
    assert [row["set"] for row in loop["scoreboard"]["rows"]] == ["or3", "weibull_5k"]
    assert loop["elapsed_s"] < summary["elapsed_s"]
    assert "monitoring" not in summary  # only with --prometheus (tools/monitoring's test)

    # The printed summary: one line per layer, the genome table, the loop, the verdict.
    for text in (
        "layer 1 discovery",
        "layer 2 planning",
        "layer 3 validation",
        "layer 4 execution",
        "KPI reports received: 12/12",
        "Layers 1-8 SERVING",
        "closed loop (",
        "A/B        paired",
        "FunSearch (published)",
        "main_job: OK",
    ):
        assert text in out


@pytest.mark.parametrize(
    "flags", [["--tasks", "0"], ["--concurrency", "-1"], ["--timeout", "0"], ["--bogus"]]
)
def test_bad_flags_exit_2(flags: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main_job.main(flags)
    assert exc.value.code == 2
    assert "main_job: error:" in capsys.readouterr().err


def test_prometheus_flag_without_prometheus_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(main_job.scrape, "find_binary", lambda: None)
    with pytest.raises(SystemExit) as exc:
        main_job.main(["--prometheus"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--prometheus: no `prometheus` on PATH" in err and "Traceback" not in err


ALL_TARGETS = [f"--target={layer.name}=127.0.0.1:{50051 + i}" for i, layer in enumerate(stack.LAYERS)]


def test_targets_name_every_layer_once() -> None:
    args = main_job.parse_args(ALL_TARGETS)
    assert args.targets == {layer.name: f"127.0.0.1:{50051 + i}" for i, layer in enumerate(stack.LAYERS)}
    assert main_job.parse_args([]).targets == {}  # none: the job starts the stack itself


@pytest.mark.parametrize(
    "flags, message",
    [
        (ALL_TARGETS[:7], "missing: ['layer8_resources']"),
        ([*ALL_TARGETS, "--target=layer9_demo=127.0.0.1:1"], "unknown: ['layer9_demo']"),
        ([*ALL_TARGETS, ALL_TARGETS[0]], "layer1_discovery given twice"),
        (["--target=layer1_discovery=127.0.0.1"], "NAME=HOST:PORT"),
        (["--target=layer1_discovery=127.0.0.1:70000"], "port in 1-65535"),
        ([*ALL_TARGETS, "--prometheus"], "with --target it starts none"),
    ],
)
def test_bad_targets_exit_2(
    flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main_job.parse_args(flags)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_a_loop_summary_that_breaks_its_schema_is_not_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The run itself is replaced (no servers): what matters is the writer's check.
    out = tmp_path / "main_job_summary.json"
    out.write_text('{"ok": true}\n')  # the last good summary
    broken = {"ok": True, "reason": "", "elapsed_s": 1.0, "layers": {},
              "closed_loop": {"ok": True, "reason": "", "families": {"or": {"phases_s": {"evolve": "fast"}}}}}
    monkeypatch.setattr(main_job, "run", lambda args: main_job.Outcome(0, broken))
    assert main_job.main(["--summary-out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("main_job: the closed loop's summary breaks its schema: "
                          "closed_loop.families.or.phases_s.evolve: expected a number, got 'fast'")
    assert "\n" not in err and "Traceback" not in err
    assert out.read_text() == '{"ok": true}\n'
    assert json.loads((tmp_path / "main_job_summary.invalid.json").read_text()) == broken
