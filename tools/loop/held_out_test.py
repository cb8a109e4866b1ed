"""Held out means held out: the search path never opens the published sets.

The main job runs the loop (small budget) with every published file's path
poisoned in the environment the eight layer servers inherit, so a server that
reached for one would fail the run, and with an audit hook recording every
file this process opens. The poison is lifted only when the scoreboard phase
starts (after the A/B decision): every published file opened before then fails
the test, and the scoreboard's own reads after it show the hook sees them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import main_job
from chimera.binpacking import published

FILES = (*published.SETS.values(), "SHA256SUMS", "published_figures.json")
POISON = {published.env_var(name): f"/nonexistent/held-out/{name}" for name in FILES}
opened: list[tuple[str, str]] = []  # (phase, path)
phase = ["start"]


def _audit(event: str, args: tuple) -> None:
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.fsdecode(args[0])
        if Path(path).name in FILES:
            opened.append((phase[0], path))


sys.addaudithook(_audit)


def test_the_search_path_never_opens_the_published_sets(tmp_path: Path, monkeypatch) -> None:
    for var, value in POISON.items():
        monkeypatch.setenv(var, value)

    def observe(name: str, layers) -> None:  # noqa: ANN001 (the main job's observer)
        phase[0] = name
        if name == "scoreboard":
            for var in POISON:
                os.environ.pop(var, None)

    args = main_job.parse_args([
        "--families", "weibull", "--items", "300", "--population", "8", "--generations", "2",
        "--screen-generations", "1", "--train-instances", "2", "--tasks", "2", "--window", "8",
        "--generalisation-instances", "0", "--run-dir", str(tmp_path / "run"),
    ])
    outcome = main_job.run(args, observe)
    loop = outcome.summary["closed_loop"]
    assert outcome.status == 0 and loop["ok"], loop["reason"]
    assert loop["families"]["weibull"]["outcome"]["decision"] in ("PROMOTE", "ROLL_BACK", "INCONCLUSIVE", "VETOED")
    before = [(p, path) for p, path in opened if p != "scoreboard"]
    assert before == [], before
    # The hook does see the published files: the scoreboard read them, after the decision.
    assert {Path(path).name for p, path in opened if p == "scoreboard"} >= set(published.SETS.values())
