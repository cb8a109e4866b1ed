"""The closed loop's last run as a static page: loop.html and its PNG plots, drawn
from the main job's summary, which carries the loop's under `closed_loop` (or from a
file holding the loop's summary alone, like the test fixtures).

    bazel run //tools/loop:loop_page -- --summary build-metrics/main_job_summary.json \\
        --out build-metrics/dashboard

When OUT holds the build dashboard (index.html), its navigation gets a link to
the page. Exit status 0 when the page is written, 2 for a missing or invalid summary.
"""

from __future__ import annotations

import argparse
import html
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from chimera.binpacking.instances import FAMILIES
from tools.loop import loop_plots
from tools.loop.loop_summary import SummaryError, load
from tools.metrics.report import pages

PAGE = "loop.html"
TITLE = "Chimera closed loop on online bin packing: last run"


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


def _generations_table(summary: dict[str, Any], prefix: str, family: str) -> str:
    columns = [("generation", "generation"), ("source", "fitness from"), ("best_excess_pct", "best (excess %)"),
               ("mean_excess_pct", "mean (excess %)"), ("diversity", "diversity"),
               ("evaluations", "layer-4 evaluations so far"), ("wall_ms", "wall time (ms)")]
    gens = summary["evolution"]["generations"]
    present = [(k, label) for k, label in columns if all(k in g for g in gens)]
    rows = [[pages.cell(g[k], f"{prefix}evolution.generations.{i}.{k}") for k, _ in present]
            for i, g in enumerate(gens)]
    return pages.table([label for _, label in present], rows, f"generations-{family}")


def _ab_rows(ab: dict[str, Any], prefix: str) -> list[list[str]]:
    rows = _fields(ab, f"{prefix}ab_test", [
        ("decision", "decision"),
        ("design", "design"),
        ("planned_samples_per_arm", "planned held-out instances per arm"),
        ("samples_used_per_arm", "pairs used"),
        ("baseline_mean_excess_pct", "Best Fit mean excess (%)"),
        ("candidate_mean_excess_pct", "candidate mean excess (%)"),
        ("mean_difference", "mean paired difference (%)"),
        ("t_statistic", "paired t"),
        ("p_value", "paired t p-value"),
        ("wilcoxon_p_value", "Wilcoxon signed-rank p-value"),
        ("always_valid_p_value", "always-valid p-value (mSPRT)"),
        ("alpha", "α (significance level)"),
        ("effect_size", "effect size (d_z)"),
        ("hedges_g", "Hedges' g"),
    ])
    low, high = ab["hedges_g_ci"]
    rows.append(["Hedges' g, 95% CI low", pages.cell(low, f"{prefix}ab_test.hedges_g_ci.0")])
    rows.append(["Hedges' g, 95% CI high", pages.cell(high, f"{prefix}ab_test.hedges_g_ci.1")])
    rows += _fields(ab, f"{prefix}ab_test", [("holdout", "held-out instances"),
                                             ("evaluations", "evaluations"), ("failed_pairs", "failed pairs")])
    for i, guard in enumerate(ab.get("guardrails", [])):
        rows.append([f"guardrail {guard['metric']}: regression (max)",
                     pages.cell(guard["regression"], f"{prefix}ab_test.guardrails.{i}.regression")])
    return rows


def _headline(summary: dict[str, Any]) -> str:
    figures = []
    ab = summary.get("ab_test")
    if ab:
        low, high = ab["hedges_g_ci"]
        figures += [
            ("held-out excess, Best Fit → candidate",
             f"{ab['baseline_mean_excess_pct']:.3f} % → {ab['candidate_mean_excess_pct']:.3f} %"),
            (f"paired p-value (α = {ab['alpha']:g})", f"{ab['p_value']:.2g}"),
            ("Hedges' g, 95% CI", f"{ab['hedges_g']:.2f} [{low:.2f}, {high:.2f}]"),
        ]
    if "total" in summary.get("evaluations", {}):
        figures.append(("layer-4 evaluations", str(summary["evaluations"]["total"])))
    if "elapsed_s" in summary:
        figures.append(("wall time", pages.seconds(summary["elapsed_s"])))
    return pages.tiles(figures) if figures else ""


def _outcome_rows(summary: dict[str, Any], p: str) -> list[list[str]]:
    rows = []
    rows += _fields(summary.get("outcome", {}), f"{p}outcome", [
        ("decision", "decision"), ("action", "action"), ("reason", "why"),
        ("active_version", "active version"), ("canary_version", "canary version"),
        ("baseline_version", "baseline version")])
    if "elapsed_s" in summary:
        rows.append(["elapsed, start to stop (s)", pages.cell(summary["elapsed_s"], f"{p}elapsed_s")])
    return rows


def _family_body(family: str, summary: dict[str, Any], p: str, images: dict[str, str]) -> str:
    decision = summary.get("outcome", {}).get("decision", "NOT DECIDED")
    parts = [
        f'<h2 id="outcome-{family}">{html.escape(family)}: outcome '
        f'<span class="badge {html.escape(decision)}">{html.escape(decision)}</span></h2>',
        _headline(summary),
    ]
    if "ab_test" not in summary:
        parts.append(_kv("Run", _outcome_rows(summary, p), f"outcome-{family}"))
    else:
        parts.append(f'<img src="{images["ab"]}" alt="A/B test on held-out instances">')
        parts.append(_pair(_kv("A/B test on held-out instances (layer 5)", _ab_rows(summary["ab_test"], p), f"ab-test-{family}"),
                           _kv("Run", _outcome_rows(summary, p), f"outcome-{family}")))
    if "evolution" in summary:
        evolution = summary["evolution"]
        parts.append(f'<h2 id="generations-{family}">{html.escape(family)}: excess per generation</h2>')
        if evolution["generations"]:
            parts.append(f'<img src="{images["generations"]}" alt="Quality per generation">')
            parts.append(_generations_table(summary, p, family))
        parts.append(_kv("Evolution", _fields(evolution, f"{p}evolution", [
            ("population", "population"), ("training", "training instances"),
            ("items_per_instance", "items per instance"), ("screened_by_twin", "genomes screened by the twin"),
            ("stop_reason", "stopped because"), ("best_genome_id", "best genome"),
            ("best_training_excess_pct", "candidate's training excess (%, layer 4)"),
            ("resumed_from_generation", "resumed from generation"), ("failed_pairs", "failed pairs")]),
            f"evolution-{family}"))
    parts.append(f'<h2 id="phases-{family}">{html.escape(family)}: wall time and evaluations per phase</h2>')
    parts.append(f'<img src="{images["phases"]}" alt="Wall time and evaluations per phase">')
    evaluations = summary.get("evaluations", {})
    parts.append(_pair(
        _kv("Wall time", [[name, pages.cell(s, f"{p}phases_s.{name}")] for name, s in loop_plots.phases(summary)], f"phases-{family}",
            ("phase", "wall time (s)")),
        _kv("Layer-4 evaluations (genome × instance)",
            [[k, pages.cell(v, f"{p}evaluations.{k}")] for k, v in loop_plots.in_order(evaluations, (*loop_plots.EVALUATION_ORDER, "total"))],
            f"evaluations-{family}", ("phase", f"evaluations-{family}"))))
    parts.append(f'<h2 id="inputs-{family}">{html.escape(family)}: trigger, grant and strategy</h2>')
    parts.append(_pair(
        _kv("Trigger (layer 5)", _fields(summary.get("trigger", {}), f"{p}trigger", [
            (f"trigger-{family}", f"trigger-{family}"), ("should_evolve", "evolve"), ("reason", "reason"),
            ("current_mean", "current mean excess (%)"), ("baseline_mean", "earlier mean excess (%)"),
            ("p_value", "p-value"), ("sample_count", "samples")]), f"trigger-{family}"),
        _kv("Grant (layer 8)", _fields(summary.get("resources", {}), f"{p}resources", [
            ("job_id", "job"), ("allocation_id", "allocation"), ("cpu_cores", "CPU cores"),
            ("device_ids", "accelerators"), ("requested_population", "population asked"),
            ("max_population", "population granted"), ("wall_time_seconds", "wall time granted (s)"),
            ("cost_usd", "cost (USD)"), ("released", "released as")]), f"grant-{family}"),
        _kv("Strategy (layer 6)", _fields(summary.get("strategy", {}), f"{p}strategy", [
            ("algorithm", "algorithm chosen"), ("runner", "run by"), ("reason", "reason"),
            ("exploration", "exploration"), ("problem_class", "problem class"),
            ("hyperparameters", "hyperparameters")]), f"strategy-{family}"),
        _kv("Baseline (layers 3, 4)", _fields(summary.get("baseline", {}), f"{p}baseline", [
            ("genome_id", "genome"), ("version", "version"), ("stream_instances", "stream instances"),
            ("stream_excess_pct", "excess on the stream (%)"),
            ("kpi_reports_at_layer5", "KPI reports at layer 5"), ("failed_pairs", "failed pairs")]), f"baseline-{family}"),
        _kv("Canary (layer 4)", _fields(summary.get("canary", {}), f"{p}canary", [
            ("source", "source"), ("genome_id", "genome"), ("version", "version"),
            ("previous_version", "previous version"), ("parameters", "parameters")]), f"canary-{family}"),
    ))
    return "\n".join(part for part in parts if part)


def _scoreboard(summary: dict[str, Any], p: str) -> str:
    board = summary.get("scoreboard")
    if not board:
        return ""
    rows = []
    for i, row in enumerate(board["rows"]):
        at = f"{p}scoreboard.rows.{i}"
        evolved = "not run" if row.get("evolved") is None else pages.cell(row["evolved"], f"{at}.evolved")
        rows.append([html.escape(row["set"]), pages.cell(row["first_fit"], f"{at}.first_fit"),
                     pages.cell(row["best_fit"], f"{at}.best_fit"), evolved,
                     pages.cell(row["published"]["funsearch"], f"{at}.published.funsearch")])
    table = pages.table(["set", "First Fit (%)", "Best Fit (%)", "evolved (%)", "FunSearch, published (%)"],
                        rows, "scoreboard")
    note = (f'<p class="muted">Excess of the bins used over the L1 bound on the published sets (held out). '
            f'First Fit, Best Fit and evolved: measured by {html.escape(board["measured_by"])} after the loop '
            f'decided; FunSearch: the published figure ({html.escape(board["published_source"])}).</p>')
    return '<h2 id="scoreboard-section">The published table</h2>' + table + note


def _body(summary: dict[str, Any], prefix: str, images: dict[str, str], source: str) -> str:
    parts = [f'<p class="muted">{source} Excess is the bins used over the L1 bound, in % '
             f'(lower is better); times in seconds (s).</p>', _scoreboard(summary, prefix)]
    if not summary["ok"]:
        parts.append(f'<p>The loop failed: {html.escape(summary["reason"])}</p>')
    for family, family_summary in summary["families"].items():
        if f"{family}/priority" in images:
            parts.append(f'<img src="{images[family + "/priority"]}" alt="{html.escape(family)}: evolved priority">')
        family_images = {k.split("/", 1)[1]: v for k, v in images.items() if k.startswith(family + "/")}
        parts.append(_family_body(family, family_summary, f"{prefix}families.{family}.", family_images))
    for i, row in enumerate(summary.get("generalisation", [])):
        parts.append(_kv(f"Generalisation: {row['family']}, {row['items']} items", _fields(
            row, f"{prefix}generalisation.{i}", [("instances", "fresh instances"), ("best_fit", "Best Fit (%)"),
                                                 ("evolved", "evolved (%)"), ("beats_best_fit", "beats Best Fit")]),
            f"generalisation-{i}"))
    return "\n".join(part for part in parts if part)


def write(summary: dict[str, Any], out: Path, prefix: str = "", source: str = "") -> list[Path]:
    """Writes loop.html and its PNGs into `out` (links it from out/index.html when
    that exists); returns the files written. `prefix` is where the loop summary
    sits in its file ("closed_loop" or "")."""
    out.mkdir(parents=True, exist_ok=True)
    images = {}
    for family, fam in summary["families"].items():
        images[f"{family}/phases"] = loop_plots.plot_phases(fam, out / f"loop_{family}_phases.png")
        if fam.get("evolution", {}).get("generations"):
            images[f"{family}/generations"] = loop_plots.plot_generations(fam, out / f"loop_{family}_generations.png")
        if fam.get("evolution", {}).get("best_parameters"):
            capacity = FAMILIES[family].capacity
            images[f"{family}/priority"] = loop_plots.plot_priority(
                fam["evolution"]["best_parameters"], capacity,
                f"{family}: the evolved priority over (item, remaining capacity), capacity {capacity}",
                out / f"loop_{family}_priority.png")
        if "ab_test" in fam:
            images[f"{family}/ab"] = loop_plots.plot_ab_test(fam, out / f"loop_{family}_ab_test.png")
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
