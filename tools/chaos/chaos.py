"""Chaos through the main job: SIGKILL layers at seeded random points, check what survived.

``bazel run //tools/chaos -- --kill layer7_genetics [--kill layer4_execution ...] --seed 3``
runs the main job (//tools/main:main_job, its own supervised stack of the eight
layers on loopback) on a small budget, and kills each ``--kill`` layer's process
group with SIGKILL at a point drawn from ``--seed``: uniformly within
``--kill-window`` seconds after the layers report SERVING (two ``--kill`` of the
same layer: the second after its first restart). Every kill (layer, pid, time)
is recorded. Then it checks, and prints one line per check:

* the loop reached a decision (PROMOTE or ROLL_BACK);
* every kill shows as a supervised restart that served again;
* layer 7's genome store passes ``PRAGMA integrity_check`` and nothing is lost
  or duplicated in it: generations 0..G numbered without gaps, each with as
  many genomes as its recorded size, every genome of generation g > 0 with
  lineage rows, one deployment record per DeployBest;
* layer 4's deployment record (``--state-dir``) holds every version the loop
  deployed, once, without gaps, with the loop's genomes, and the active
  version the loop ended on;
* layer 5's experiment journal holds exactly the loop's A/B observations, in
  order, per arm (none lost, none twice);
* layer 8's grant was released (the job FINISHED through layer 7's EndRun);
* every server the stack ever started has exited.

Exit status 0 when every check passed, 1 otherwise, 2 for bad flags (one line).
``--out FILE`` writes the kills and checks as JSON. Traffic stays on 127.0.0.1
(the main job's stack binds loopback only).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf.message import DecodeError

from chimera.framework.processes import pid_alive, runfile
from chimera.v1 import refinement_pb2
from tools.main.stack import LAYERS

LOOP_FAMILY = "weibull"
LOOP_MODULE = f"chaos-loop-{LOOP_FAMILY}"  # closed_loop: "<prefix>-<family>"
LOOP_AGENT = f"{LOOP_MODULE}-agent"  # closed_loop: "<prefix>-<family>-agent"
#: A small loop: Weibull instances of 500 items, 24 generations of 12 genomes on
#: 8 training instances run by layer 7's GA (so its genome store, lineage and
#: deployment record are exercised), a plan workload of 2 tasks per genome. The
#: generations are what keeps the loop running for longer than the kill window
#: plus a restart: on an idle 2-core machine 3 generations ended the loop ~5 s
#: after SERVING, before a kill drawn in a 20 s window (the main job ended first);
#: 24 take ~25 s there, and a loaded machine only makes the loop longer.
SMALL_BUDGET = (
    "--families", LOOP_FAMILY, "--items", "500", "--strategy", "layer7_ga", "--window", "8",
    "--population", "12", "--generations", "24", "--train-instances", "8", "--jobs", "30",
    "--tasks", "2", "--loop-module-prefix", "chaos-loop", "--generalisation-instances", "0",
)
LAYER_NAMES = tuple(layer.name for layer in LAYERS)
SERVING_LINE = "SERVING as subprocesses"
DECISIONS = ("PROMOTE", "ROLL_BACK")


class Usage(Exception):
    """A bad flag: one line, exit 2."""


@dataclass
class Kill:
    layer: str
    delay_s: float  # drawn from the seed: after SERVING (or after the layer's last restart)
    pid: int = 0
    at_s: float = 0.0  # when it happened, after SERVING
    done: bool = False
    error: str = ""


@dataclass
class Report:
    seed: int
    kills: list[Kill]
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    main_job_status: int | None = None
    elapsed_s: float = 0.0

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append((name, bool(ok), detail))

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(ok for _, ok, _ in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "seed": self.seed,
            "main_job_status": self.main_job_status,
            "elapsed_s": round(self.elapsed_s, 3),
            "kills": [k.__dict__ for k in self.kills],
            "checks": [{"check": n, "ok": ok, "detail": d} for n, ok, d in self.checks],
        }


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="chaos", description=__doc__.splitlines()[0])
    p.add_argument("--kill", action="append", required=True, metavar="LAYER",
                   help=f"a layer to SIGKILL (repeatable; one of {', '.join(LAYER_NAMES)})")
    p.add_argument("--seed", type=int, default=1, help="draws the kill points")
    p.add_argument("--kill-window", type=float, default=8.0,
                   help="seconds after SERVING within which each kill falls")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds the main job may take")
    p.add_argument("--run-dir", type=Path, help="the main job's run directory (default: a new one)")
    p.add_argument("--out", type=Path, help="write the report as JSON here")
    args = p.parse_args(list(argv))
    unknown = [name for name in args.kill if name not in LAYER_NAMES]
    if unknown:
        raise Usage(f"--kill: unknown layer {unknown[0]!r} (one of {', '.join(LAYER_NAMES)})")
    if any(args.kill.count(name) > 2 for name in args.kill):
        raise Usage("--kill: at most twice per layer (the stack restarts a layer 3 times)")
    if args.seed < 0:
        raise Usage(f"--seed must be >= 0 (got {args.seed})")
    if not 0 < args.kill_window <= 600:
        raise Usage(f"--kill-window must be in (0, 600] s (got {args.kill_window})")
    if not 0 < args.timeout <= 3600:
        raise Usage(f"--timeout must be in (0, 3600] s (got {args.timeout})")
    return args


def plan_kills(names: Sequence[str], seed: int, window: float) -> list[Kill]:
    rng = random.Random(seed)
    return [Kill(name, round(rng.uniform(0.0, window), 3)) for name in names]


def _pid(run_dir: Path, layer: str) -> int:
    try:
        return int((run_dir / f"{layer}.pid").read_text())
    except (OSError, ValueError):
        return 0


def _killer(run_dir: Path, kills: list[Kill], serving_at: float, stop: threading.Event) -> None:
    """Kills in order of their times; a second kill of a layer waits for its restart."""
    by_time = sorted(kills, key=lambda k: k.delay_s)
    origin = {k.layer: serving_at for k in kills}
    for kill in by_time:
        earlier = [k for k in kills if k.layer == kill.layer and k.done]
        if earlier:  # the same layer again: after the supervisor restarted it
            dead = earlier[-1].pid
            while not stop.is_set() and _pid(run_dir, kill.layer) in (0, dead):
                time.sleep(0.05)
            origin[kill.layer] = time.monotonic()
        if stop.wait(max(0.0, origin[kill.layer] + kill.delay_s - time.monotonic())):
            kill.error = "the main job ended first"
            continue
        kill.pid = _pid(run_dir, kill.layer)
        kill.at_s = round(time.monotonic() - serving_at, 3)
        try:
            os.killpg(kill.pid, signal.SIGKILL)  # the server leads its own process group
            kill.done = True
        except (ProcessLookupError, PermissionError, OSError) as exc:
            kill.error = f"killpg({kill.pid}): {exc}"


def run(args: argparse.Namespace) -> Report:
    run_dir = args.run_dir or Path(
        tempfile.mkdtemp(prefix="chimera-chaos-", dir=os.environ.get("TEST_TMPDIR"))
    )
    summary_path = run_dir / "summary.json"
    report = Report(args.seed, plan_kills(args.kill, args.seed, args.kill_window))
    started = time.monotonic()
    argv = [str(runfile("tools/main/main_job")), *SMALL_BUDGET,
            "--run-dir", str(run_dir / "stack"), "--summary-out", str(summary_path)]
    job = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)
    stop = threading.Event()
    killer: threading.Thread | None = None
    log_lines: list[str] = []
    pids_seen: set[int] = set()
    try:
        assert job.stdout is not None
        for line in job.stdout:
            log_lines.append(line)
            if killer is None and SERVING_LINE in line:
                killer = threading.Thread(
                    target=_killer,
                    args=(run_dir / "stack", report.kills, time.monotonic(), stop),
                    daemon=True,
                )
                killer.start()
            for name in LAYER_NAMES:
                pid = _pid(run_dir / "stack", name)
                if pid:
                    pids_seen.add(pid)
            if time.monotonic() - started > args.timeout:
                break
        report.main_job_status = job.wait(timeout=max(1.0, args.timeout - (time.monotonic() - started)))
    except subprocess.TimeoutExpired:
        pass
    finally:
        stop.set()
        if job.poll() is None:  # SIGTERM: the main job stops its servers on the way out
            os.killpg(job.pid, signal.SIGTERM)
            try:
                job.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(job.pid, signal.SIGKILL)
                job.wait()
        if killer is not None:
            killer.join()
    report.elapsed_s = time.monotonic() - started
    (run_dir / "main_job.out").write_text("".join(log_lines))
    pids_seen.update(k.pid for k in report.kills if k.pid)
    check(report, run_dir, summary_path, pids_seen)
    return report


def check(report: Report, run_dir: Path, summary_path: Path, pids: set[int]) -> None:
    done = [k for k in report.kills if k.done]
    report.check("kills happened", len(done) == len(report.kills),
                 "; ".join(f"{k.layer} pid {k.pid} at {k.at_s:.1f} s" if k.done
                           else f"{k.layer}: {k.error}" for k in report.kills))
    try:
        job = json.loads(summary_path.read_text())
    except (OSError, ValueError) as exc:
        report.check("main job summary", False, f"{summary_path}: {exc}")
        job = {}
    loop = job.get("closed_loop", {}).get("families", {}).get(LOOP_FAMILY, {})
    decision = loop.get("outcome", {}).get("decision", "")
    report.check("loop reached a decision", decision in DECISIONS,
                 decision or f"no decision: {job.get('reason', 'no summary')}")
    report.check("main job ok", bool(job.get("ok")), job.get("reason", "") or "ok")

    supervision = job.get("supervision", {})
    events = supervision.get("events", [])
    for kill in done:
        served = [e for e in events if e["name"] == kill.layer and e["serving"]]
        wanted = sum(1 for k in done if k.layer == kill.layer)
        report.check(f"{kill.layer} restarted", len(served) >= wanted,
                     f"{len(served)} restart(s) serving for {wanted} kill(s): "
                     + ", ".join(f"{e['downtime_s']:.1f} s" for e in served))

    grant = loop.get("resources", {})
    if grant:
        report.check("grant released", grant.get("released") == "JOB_STATUS_FINISHED",
                     f"job {grant.get('job_id')}: {grant.get('released', 'not released')}")

    report.checks.extend(store_checks(run_dir / "stack" / "genetics" / "genomes.sqlite", loop))
    report.checks.extend(deployment_checks(run_dir / "stack" / "execution" / "deployments.json", loop))
    report.checks.extend(experiment_checks(run_dir / "stack" / "refinement" / "experiments.jsonl", loop))

    alive = sorted(pid for pid in pids if pid_alive(pid))
    report.check("every server stopped", not alive and bool(pids),
                 f"{len(pids)} server processes seen, alive: {alive or 'none'}")


def store_checks(path: Path, loop: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """Layer 7's genome store after the run: intact, nothing lost or duplicated."""
    if not path.exists():
        return [("genome store", False, f"{path} does not exist")]
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        out = [("store integrity_check", integrity == "ok", integrity)]
        agent = LOOP_AGENT
        rows = db.execute(
            "SELECT generation, size FROM generations WHERE agent_id = ? ORDER BY generation",
            (agent,),
        ).fetchall()
        numbers = [g for g, _ in rows]
        out.append(("generations without gaps", numbers == list(range(len(numbers))) and numbers,
                    f"agent {agent}: generations {numbers}"))
        counts = dict(db.execute(
            "SELECT generation, COUNT(*) FROM genomes WHERE agent_id = ? GROUP BY generation",
            (agent,),
        ).fetchall())
        short = {g: (counts.get(g, 0), size) for g, size in rows if counts.get(g, 0) != size}
        total = sum(counts.values())
        out.append(("genomes per generation", not short,
                    f"{total} genomes; mismatched (stored, size): {short or 'none'}"))
        orphans = db.execute(
            "SELECT COUNT(*) FROM genomes g WHERE g.agent_id = ? AND g.generation > 0 AND NOT "
            "EXISTS (SELECT 1 FROM lineage l WHERE l.child_id = g.id)",
            (agent,),
        ).fetchone()[0]
        lineage = db.execute(
            "SELECT COUNT(*) FROM lineage l JOIN genomes g ON g.id = l.child_id WHERE g.agent_id = ?",
            (agent,),
        ).fetchone()[0]
        out.append(("lineage rows", orphans == 0,
                    f"{lineage} rows; bred genomes without parents: {orphans}"))
        deployments = db.execute(
            "SELECT COUNT(*) FROM deployments WHERE agent_id = ?", (agent,)
        ).fetchone()[0]
        out.append(("one deployment record", deployments == 1, f"{deployments} DeployBest records"))
        evolved = len(loop.get("evolution", {}).get("generations", []))
        out.append(("generations match the loop",
                    bool(numbers) and numbers[-1] == loop["evolution"]["resumed_from_generation"] + evolved
                    if "evolution" in loop else False,
                    f"store's last generation {numbers[-1] if numbers else None}, loop evolved {evolved}"))
    return out


def deployment_checks(path: Path, loop: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """Layer 4's deployment record after the run: every deployment of the loop, once."""
    try:
        slot = json.loads(path.read_text())["slots"][LOOP_MODULE]
    except (OSError, ValueError, KeyError) as exc:
        return [("deployment record", False, f"{path}: no slot {LOOP_MODULE!r}: {exc!r}")]
    versions = [d["version"] for d in slot["deployments"]]
    genomes = {d["version"]: d["genome_id"] for d in slot["deployments"]}
    out = [("deployment versions without gaps", versions == list(range(1, len(versions) + 1)),
            f"slot {LOOP_MODULE}: versions {versions}")]
    # What the loop was told it deployed: (version, genome id or "" for the module).
    told = {
        section: (loop[section]["version"], loop[section].get("genome_id", ""))
        for section in ("kernel", "baseline", "canary") if section in loop
    }
    lost = {k: v for k, (v, genome) in told.items() if genomes.get(v, None) != genome}
    extra = sorted(set(versions) - {v for v, _ in told.values()})
    out.append(("deployments recorded once", not lost and not extra and bool(told),
                f"loop deployed {told}; not in the record as told: {lost or 'none'}; "
                f"recorded but never told: {extra or 'none'}"))
    outcome = loop.get("outcome", {})
    if "active_version" in outcome:
        out.append(("active version recorded", slot["active"] == outcome["active_version"],
                    f"record active v{slot['active']}, loop ended on v{outcome['active_version']}"))
    return out


def experiment_checks(path: Path, loop: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """Layer 5's journal after the run: exactly the loop's A/B observations, in order."""
    ab = loop.get("ab_test")
    if ab is None:
        return [("experiment observations", False, "the loop ran no A/B test")]
    recorded: dict[str, list[float]] = {}
    try:
        for line in path.read_text().splitlines():
            event = json.loads(line)
            if "observed" not in event:
                continue
            observed = refinement_pb2.RecordObservationRequest.FromString(
                base64.b64decode(event["observed"], validate=True)
            )
            if observed.experiment_id == ab["experiment_id"]:
                recorded.setdefault(observed.variant_name, []).append(observed.value)
    except (OSError, ValueError, DecodeError) as exc:
        return [("experiment observations", False, f"{path}: {exc}")]
    wanted = ab["observations"]
    return [("experiment observations", recorded == wanted,
             f"{ab['experiment_id']}: journal {({a: len(v) for a, v in recorded.items()})}, "
             f"loop recorded {({a: len(v) for a, v in wanted.items()})}"
             + ("" if recorded == wanted else " (values or order differ)"))]


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
    except Usage as exc:
        print(f"chaos: {exc}", file=sys.stderr)
        return 2
    report = run(args)
    kills = ", ".join(f"{k.layer}+{k.delay_s:g}s" for k in report.kills)
    print(f"chaos seed {report.seed}: kills {kills}; main job exit {report.main_job_status} "
          f"in {report.elapsed_s:.0f} s")
    for name, ok, detail in report.checks:
        print(f"  {'ok  ' if ok else 'FAIL'} {name}: {detail}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    print(f"chaos: {'OK' if report.ok else 'FAILED'}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
