"""The closed loop's last run as a static page: loop.html and its PNG plots, drawn
from the loop's summary (`bazel run //tools/loop:closed_loop -- --summary-out F`,
or the main job's summary, which carries it under `closed_loop`).

    bazel run //tools/metrics/report:loop_page -- --summary build-metrics/main_job_summary.json \\
        --out build-metrics/dashboard

When OUT holds the build dashboard (index.html), its navigation gets a link to
the page. Exit status 0 when the page is written, 2 for a missing or invalid summary.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from tools.metrics.report import pages

PAGE = "loop.html"
TITLE = "Chimera closed loop: last run"
QUALITY = "quality (accepted priority × utilization, 0–1)"
#: The loop's phases in the order they run (tools/loop/closed_loop.py).
PHASE_ORDER = ("startup", "baseline", "trigger", "grant", "strategy", "evolve", "canary", "ab_test")
#: The phases that spend layer-4 evaluations, in the same order.
EVALUATION_ORDER = ("baseline_stream", "evolution", "ab_test")


class SummaryError(ValueError):
    """The summary is not a closed-loop summary; the message names the field."""


# --- reading and checking ---------------------------------------------------------------


def _number(obj: dict[str, Any], key: str, where: str) -> float:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SummaryError(f"{where}.{key}: expected a number, got {value!r}")
    return float(value)


def _object(obj: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = obj.get(key)
    if not isinstance(value, dict):
        raise SummaryError(f"{where}.{key}: expected an object, got {value!r}")
    return value


def _numbers(value: Any, where: str) -> list[float]:
    if not isinstance(value, list) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    ):
        raise SummaryError(f"{where}: expected a list of numbers")
    return [float(v) for v in value]


def check(summary: Any, where: str = "summary") -> dict[str, Any]:
    """The summary if every section the page draws has the fields it needs."""
    if not isinstance(summary, dict):
        raise SummaryError(f"{where}: expected a JSON object")
    if not isinstance(summary.get("ok"), bool):
        raise SummaryError(f"{where}.ok: expected true or false, got {summary.get('ok')!r}")
    if not isinstance(summary.get("reason"), str):
        raise SummaryError(f"{where}.reason: expected a string")
    phases = _object(summary, "phases_s", where)
    for name in phases:
        _number(phases, name, f"{where}.phases_s")
    if "baseline" in summary:
        _number(_object(summary, "baseline", where), "stream_mean_quality", f"{where}.baseline")
    if "evolution" in summary:
        evolution = _object(summary, "evolution", where)
        generations = evolution.get("generations")
        if not isinstance(generations, list):
            raise SummaryError(f"{where}.evolution.generations: expected a list")
        for i, gen in enumerate(generations):
            if not isinstance(gen, dict):
                raise SummaryError(f"{where}.evolution.generations[{i}]: expected an object")
            for key in ("generation", "best_fitness", "mean_fitness", "evaluations"):
                _number(gen, key, f"{where}.evolution.generations[{i}]")
    if "ab_test" in summary:
        ab = _object(summary, "ab_test", where)
        at = f"{where}.ab_test"
        for key in ("baseline_mean_quality", "candidate_mean_quality", "p_value", "alpha",
                    "effect_size_cohens_d", "hedges_g", "samples_used_per_arm"):
            _number(ab, key, at)
        if not isinstance(ab.get("decision"), str):
            raise SummaryError(f"{at}.decision: expected a string")
        if len(_numbers(ab.get("hedges_g_ci"), f"{at}.hedges_g_ci")) != 2:
            raise SummaryError(f"{at}.hedges_g_ci: expected [low, high]")
        observations = _object(ab, "observations", at)
        base = _numbers(observations.get("baseline"), f"{at}.observations.baseline")
        cand = _numbers(observations.get("candidate"), f"{at}.observations.candidate")
        if len(base) != len(cand) or not base:
            raise SummaryError(f"{at}.observations: expected two non-empty lists of equal length "
                               f"(got {len(base)} and {len(cand)})")
    for section in ("trigger", "resources", "strategy", "canary", "outcome", "evaluations"):
        if section in summary:
            _object(summary, section, where)
    return summary


def load(path: Path) -> tuple[dict[str, Any], str]:
    """(the loop summary, where in the file it was): the file's top level, or its `closed_loop`."""
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise SummaryError(f"{path}: {err.strerror or err}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SummaryError(f"{path}: not JSON ({err})") from None
    if isinstance(data, dict) and "closed_loop" in data:
        return check(data["closed_loop"], "closed_loop"), "closed_loop"
    if isinstance(data, dict) and "phases_s" not in data and "ok" not in data:
        raise SummaryError(f"{path}: neither a closed-loop summary (ok, reason, phases_s) "
                           f"nor a file with a closed_loop object")
    return check(data), ""


# --- plots --------------------------------------------------------------------------------


def plot_generations(summary: dict[str, Any], path: Path) -> str:
    gens = summary["evolution"]["generations"]
    xs = [g["generation"] for g in gens]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1.4]})
    top.plot(xs, [g["best_fitness"] for g in gens], marker="o", color=pages.BLUE, label="best of the generation")
    top.plot(xs, [g["mean_fitness"] for g in gens], marker="s", color=pages.ORANGE, label="population mean")
    if "baseline" in summary:
        top.axhline(summary["baseline"]["stream_mean_quality"], color=pages.GREY, linestyle="--",
                    label="baseline genome (mean on its stream instances)")
    top.set_ylabel(f"mean {QUALITY}")
    evolution = summary["evolution"]
    top.set_title(f"Training fitness per generation: population {evolution.get('population', '?')}, "
                  f"{evolution.get('training_instances', '?')} training instances each")
    top.legend(fontsize=8, loc="best")
    top.grid(alpha=0.3)
    if all("diversity" in g for g in gens):
        bottom.plot(xs, [g["diversity"] for g in gens], marker="o", color=pages.PURPLE)
        bottom.set_ylabel("diversity\n(mean pairwise\ngenome distance)", color=pages.PURPLE, fontsize=8)
    if all("mutation_rate" in g and "mutation_sigma" in g for g in gens):
        operators = bottom.twinx()
        operators.plot(xs, [g["mutation_rate"] for g in gens], marker="^", color=pages.GREEN, label="mutation rate")
        operators.plot(xs, [g["mutation_sigma"] for g in gens], marker="v", color=pages.RED, label="mutation σ")
        operators.set_ylabel("layer 6's operators\n(rate per gene, σ)", fontsize=8)
        operators.legend(fontsize=7, loc="upper center", ncol=2)
    bottom.set_xlabel("generation")
    bottom.set_xticks(xs)
    bottom.grid(alpha=0.3)
    return pages.save_png(fig, path)


def _mean_ci95(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% interval (normal approximation, 1.96 standard errors)."""
    arr = np.asarray(values, dtype=float)
    spread = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return float(arr.mean()), 1.96 * spread / math.sqrt(arr.size)


def plot_ab_test(summary: dict[str, Any], path: Path) -> str:
    ab = summary["ab_test"]
    base, cand = ab["observations"]["baseline"], ab["observations"]["candidate"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.5), gridspec_kw={"width_ratios": [1.3, 1]})
    left.boxplot([base, cand], widths=0.5, showfliers=False)
    jitter = np.random.default_rng(0).uniform(-0.12, 0.12, size=len(base))  # fixed seed: same bytes each run
    for x, values, color in ((1, base, pages.GREY), (2, cand, pages.BLUE)):
        left.scatter(x + jitter, values, s=9, alpha=0.5, color=color)
        mean, half = _mean_ci95(values)
        left.errorbar(x + 0.32, mean, yerr=half, fmt="D", color=pages.RED, capsize=4)
    left.set_xticks([1, 2])
    left.set_xticklabels([f"baseline\n{summary.get('baseline', {}).get('genome_id', '')}".strip(),
                          f"candidate\n{summary.get('canary', {}).get('genome_id', '')}".strip()], fontsize=8)
    left.set_ylabel(f"held-out {QUALITY}")
    left.set_title(f"Per instance, n = {len(base)} per arm (red: mean ± 95% CI)", fontsize=10)
    left.grid(alpha=0.3, axis="y")
    diffs = [c - b for b, c in zip(base, cand)]
    right.hist(diffs, bins=min(30, max(5, len(diffs) // 3)), color=pages.BLUE, alpha=0.8)
    right.axvline(0.0, color=pages.GREY, linestyle="--")
    right.axvline(float(np.mean(diffs)), color=pages.RED, label=f"mean {np.mean(diffs):+.4f}")
    right.set_xlabel("candidate − baseline, same held-out instance (quality)")
    right.set_ylabel("instances")
    right.set_title("Paired differences", fontsize=10)
    right.legend(fontsize=8)
    low, high = ab["hedges_g_ci"]
    fig.suptitle(f"A/B on held-out instances: {ab['decision']} (p = {ab['p_value']:.3g}, α = {ab['alpha']:g}; "
                 f"Hedges' g = {ab['hedges_g']:.2f} [{low:.2f}, {high:.2f}])")
    return pages.save_png(fig, path)


def _in_order(values: dict[str, Any], order: tuple[str, ...]) -> list[tuple[str, Any]]:
    """The known names in `order`, then any others as they come."""
    return [(k, values[k]) for k in order if k in values] + [(k, v) for k, v in values.items() if k not in order]


def _phases(summary: dict[str, Any]) -> list[tuple[str, float]]:
    return _in_order(summary["phases_s"], PHASE_ORDER)


def _evaluations(summary: dict[str, Any]) -> list[tuple[str, int]]:
    return [(k, v) for k, v in _in_order(summary.get("evaluations", {}), EVALUATION_ORDER) if k != "total"]


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s >= 0.1 else f"{1000 * s:.0f} ms"


def plot_phases(summary: dict[str, Any], path: Path) -> str:
    phases = _phases(summary)[::-1]
    evaluations = _evaluations(summary)[::-1]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.barh([n for n, _ in phases], [s for _, s in phases], color=pages.BLUE)
    for y, (_, s) in enumerate(phases):
        left.annotate(_seconds(s), (s, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    left.set_xlabel("wall time (s)")
    elapsed = f" — {summary['elapsed_s']:.1f} s start to stop" if "elapsed_s" in summary else ""
    left.set_title(f"Wall time per phase{elapsed}", fontsize=10)
    left.margins(x=0.15)
    right.barh([n for n, _ in evaluations], [v for _, v in evaluations], color=pages.ORANGE)
    for y, (_, v) in enumerate(evaluations):
        right.annotate(str(v), (v, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    right.set_xlabel("layer-4 evaluations (genome × instance pairs)")
    total = summary.get("evaluations", {}).get("total")
    right.set_title("Evaluations per phase" + (f" — {total} in all" if total is not None else ""), fontsize=10)
    right.margins(x=0.15)
    return pages.save_png(fig, path)


# --- the page -----------------------------------------------------------------------------


def _fields(section: dict[str, Any], prefix: str, labels: list[tuple[str, str]]) -> list[list[str]]:
    """[label, value] rows for the keys of `section` that are present."""
    return [[label, pages.cell(section[key], f"{prefix}.{key}")] for key, label in labels if key in section]


def _kv(title: str, rows: list[list[str]], table_id: str, headers: tuple[str, str] = ("figure", "value")) -> str:
    """A titled two-column table (h3: these sit in a section); nothing without rows."""
    if not rows:
        return ""
    return f"<div><h3>{html.escape(title)}</h3>" + pages.table(list(headers), rows, table_id) + "</div>"


def _pair(*blocks: str) -> str:
    """Blocks side by side where the page is wide enough."""
    return '<div class="pair">' + "".join(blocks) + "</div>"


def _generations_table(summary: dict[str, Any], prefix: str) -> str:
    columns = [("generation", "generation"), ("best_fitness", "best (quality)"), ("mean_fitness", "mean (quality)"),
               ("diversity", "diversity"), ("mutation_rate", "mutation rate"), ("mutation_sigma", "mutation σ"),
               ("evaluations", "evaluations so far"), ("batch_wall_ms", "batch wall time (ms)")]
    gens = summary["evolution"]["generations"]
    present = [(k, label) for k, label in columns if all(k in g for g in gens)]
    rows = [[pages.cell(g[k], f"{prefix}evolution.generations.{i}.{k}") for k, _ in present]
            for i, g in enumerate(gens)]
    return pages.table([label for _, label in present], rows, "generations")


def _ab_rows(ab: dict[str, Any], prefix: str) -> list[list[str]]:
    rows = _fields(ab, f"{prefix}ab_test", [
        ("decision", "decision"),
        ("planned_samples_per_arm", "planned held-out instances per arm"),
        ("samples_used_per_arm", "observations used per arm"),
        ("baseline_mean_quality", "baseline mean quality"),
        ("candidate_mean_quality", "candidate mean quality"),
        ("relative_improvement", "relative improvement (fraction)"),
        ("t_statistic", "Welch's t"),
        ("p_value", "p-value"),
        ("alpha", "α (significance level)"),
        ("effect_size_cohens_d", "Cohen's d"),
        ("hedges_g", "Hedges' g"),
    ])
    low, high = ab["hedges_g_ci"]
    rows.append(["Hedges' g, 95% CI low", pages.cell(low, f"{prefix}ab_test.hedges_g_ci.0")])
    rows.append(["Hedges' g, 95% CI high", pages.cell(high, f"{prefix}ab_test.hedges_g_ci.1")])
    rows += _fields(ab, f"{prefix}ab_test", [("holdout_seeds", "held-out seeds (first, last)"),
                                             ("evaluations", "evaluations"), ("failed_pairs", "failed pairs")])
    return rows


def _headline(summary: dict[str, Any]) -> str:
    figures = []
    ab = summary.get("ab_test")
    if ab:
        low, high = ab["hedges_g_ci"]
        figures += [
            ("held-out quality, baseline → candidate",
             f"{ab['baseline_mean_quality']:.3f} → {ab['candidate_mean_quality']:.3f}"),
            ("relative improvement", pages.percent(ab.get("relative_improvement"), signed=True)),
            (f"p-value (α = {ab['alpha']:g})", f"{ab['p_value']:.2g}"),
            ("Hedges' g, 95% CI", f"{ab['hedges_g']:.2f} [{low:.2f}, {high:.2f}]"),
        ]
    if "total" in summary.get("evaluations", {}):
        figures.append(("layer-4 evaluations", str(summary["evaluations"]["total"])))
    if "elapsed_s" in summary:
        figures.append(("wall time", pages.seconds(summary["elapsed_s"])))
    return pages.tiles(figures) if figures else ""


def _outcome_rows(summary: dict[str, Any], p: str) -> list[list[str]]:
    rows = [["run ok", pages.cell(summary["ok"], f"{p}ok")]]
    if summary["reason"]:
        rows.append(["reason it failed", pages.cell(summary["reason"], f"{p}reason")])
    rows += _fields(summary.get("outcome", {}), f"{p}outcome", [
        ("decision", "decision"), ("action", "action"), ("reason", "why"),
        ("active_version", "active version"), ("canary_version", "canary version"),
        ("baseline_version", "baseline version")])
    if "elapsed_s" in summary:
        rows.append(["elapsed, start to stop (s)", pages.cell(summary["elapsed_s"], f"{p}elapsed_s")])
    return rows


def _body(summary: dict[str, Any], prefix: str, images: dict[str, str], source: str) -> str:
    p = prefix
    decision = summary.get("outcome", {}).get("decision", "FAILED" if not summary["ok"] else "-")
    parts = [
        f'<p class="muted">{source} Quality is a placement\'s accepted priority × utilization '
        f'(0–1, higher is better); times in seconds (s).</p>',
        f'<h2 id="outcome">Outcome <span class="badge {html.escape(decision)}">{html.escape(decision)}</span></h2>',
        _headline(summary),
    ]
    if "ab_test" not in summary:
        parts.append(_kv("Run", _outcome_rows(summary, p), "outcome"))
    else:
        parts.append(f'<img src="{images["ab"]}" alt="A/B test on held-out instances">')
        parts.append(_pair(_kv("A/B test on held-out instances (layer 5)", _ab_rows(summary["ab_test"], p), "ab-test"),
                           _kv("Run", _outcome_rows(summary, p), "outcome")))
    if "evolution" in summary:
        evolution = summary["evolution"]
        parts.append('<h2 id="generations-section">Quality per generation (layer 7, fitness from layer 4)</h2>')
        if evolution["generations"]:
            parts.append(f'<img src="{images["generations"]}" alt="Quality per generation">')
            parts.append(_generations_table(summary, p))
        parts.append(_kv("Evolution", _fields(evolution, f"{p}evolution", [
            ("population", "population"), ("training_instances", "training instances"),
            ("stop_reason", "stopped because"), ("best_genome_id", "best genome"),
            ("best_training_fitness", "best training fitness (quality)"),
            ("resumed_from_generation", "resumed from generation"), ("failed_pairs", "failed pairs")]),
            "evolution"))
    parts.append('<h2 id="phases-section">Wall time and evaluations per phase</h2>')
    parts.append(f'<img src="{images["phases"]}" alt="Wall time and evaluations per phase">')
    evaluations = summary.get("evaluations", {})
    parts.append(_pair(
        _kv("Wall time", [[name, pages.cell(s, f"{p}phases_s.{name}")] for name, s in _phases(summary)], "phases",
            ("phase", "wall time (s)")),
        _kv("Layer-4 evaluations (genome × instance)",
            [[k, pages.cell(v, f"{p}evaluations.{k}")] for k, v in _in_order(evaluations, (*EVALUATION_ORDER, "total"))],
            "evaluations", ("phase", "evaluations"))))
    parts.append('<h2 id="inputs">Trigger, grant and strategy</h2>')
    parts.append(_pair(
        _kv("Trigger (layer 5)", _fields(summary.get("trigger", {}), f"{p}trigger", [
            ("trigger", "trigger"), ("should_evolve", "evolve"), ("reason", "reason"),
            ("current_mean", "current mean quality"), ("baseline_mean", "earlier mean quality"),
            ("p_value", "p-value"), ("sample_count", "samples")]), "trigger"),
        _kv("Grant (layer 8)", _fields(summary.get("resources", {}), f"{p}resources", [
            ("job_id", "job"), ("allocation_id", "allocation"), ("cpu_cores", "CPU cores"),
            ("device_ids", "accelerators"), ("requested_population", "population asked"),
            ("max_population", "population granted"), ("wall_time_seconds", "wall time granted (s)"),
            ("cost_usd", "cost (USD)"), ("released", "released as")]), "grant"),
        _kv("Strategy (layer 6)", _fields(summary.get("strategy", {}), f"{p}strategy", [
            ("algorithm", "algorithm chosen"), ("reason", "reason"), ("exploration", "exploration"),
            ("problem_class", "problem class"), ("hyperparameters", "hyperparameters"), ("ran", "ran")]), "strategy"),
        _kv("Baseline (layers 3, 4)", _fields(summary.get("baseline", {}), f"{p}baseline", [
            ("genome_id", "genome"), ("version", "version"), ("stream_instances", "stream instances"),
            ("stream_mean_quality", "mean quality on the stream"),
            ("kpi_reports_at_layer5", "KPI reports at layer 5"), ("failed_pairs", "failed pairs")]), "baseline"),
        _kv("Canary (layer 7 → 4)", _fields(summary.get("canary", {}), f"{p}canary", [
            ("source", "source"), ("genome_id", "genome"), ("version", "version"),
            ("previous_version", "previous version"), ("parameters", "parameters")]), "canary"),
    ))
    return "\n".join(part for part in parts if part)


def write(summary: dict[str, Any], out: Path, prefix: str = "", source: str = "") -> list[Path]:
    """Writes loop.html and its PNGs into `out` (links it from out/index.html when
    that exists); returns the files written. `prefix` is where the loop summary
    sits in its file ("closed_loop" or "")."""
    out.mkdir(parents=True, exist_ok=True)
    images = {"phases": plot_phases(summary, out / "loop_phases.png")}
    if summary.get("evolution", {}).get("generations"):
        images["generations"] = plot_generations(summary, out / "loop_generations.png")
    if "ab_test" in summary:
        images["ab"] = plot_ab_test(summary, out / "loop_ab_test.png")
    key_prefix = f"{prefix}." if prefix else ""
    nav = pages.link("index.html", "Build dashboard") if (out / "index.html").is_file() else ""
    page = out / PAGE
    page.write_text(pages.document(TITLE, nav, _body(summary, key_prefix, images, source)))
    pages.add_nav_link(out / "index.html", PAGE, "Closed loop: last run")
    return [out / name for name in images.values()] + [page]


def _path(value: str) -> Path:
    """Relative to where `bazel run` was started, not to the runfiles tree."""
    path = Path(value).expanduser()
    base = os.environ.get("BUILD_WORKING_DIRECTORY", "")
    return path if path.is_absolute() or not base else Path(base) / path


def run(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="loop_page", description=__doc__.split("\n\n")[0])
    p.add_argument("--summary", type=_path, required=True,
                   help="the loop's summary JSON, or a file with it under closed_loop")
    p.add_argument("--out", type=_path, required=True, help="folder for loop.html and its PNGs")
    args = p.parse_args(argv)
    try:
        summary, where = load(args.summary)
    except SummaryError as err:
        print(f"loop_page: bad summary: {err}", file=sys.stderr)
        return 2
    written = datetime.fromtimestamp(args.summary.stat().st_mtime, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    source = (f'From <code>{html.escape(args.summary.name)}{":" + where if where else ""}</code>, '
              f"written {written}.")
    files = write(summary, args.out, where, source)
    print(f"loop_page: {files[-1]} ({len(files) - 1} plots)")
    return 0


def main() -> None:
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
