"""The dashboard: PNG plots (matplotlib, Agg backend) and a static index.html that opens
from disk with no server: a layer overview first, then the build's figures, trends
over the history, and the details."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from tools.metrics.report import pages
from tools.metrics.report.layers import group_order

_BUILD = pages.BLUE
_TEST = pages.ORANGE
_CACHED = pages.GREEN
_OTHER = pages.GREY
_save = pages.save_png
#: The closed loop's page (tools/loop/loop_page.py), linked when it lies beside index.html.
LOOP_PAGE = "loop.html"
#: The specification's per-layer coverage target ("> 80%"), drawn on the coverage trend.
COVERAGE_TARGET_PERCENT = 80.0


def _groups(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    groups = list(report["layers"].items()) + list(report.get("other_groups", {}).items())
    return sorted(groups, key=lambda kv: group_order(kv[0]))


def plot_layer_times(report: dict[str, Any], path: Path) -> str:
    groups = _groups(report)
    names = [n for n, _ in groups]
    build = [g["build_time_seconds"] for _, g in groups]
    test = [g["test_time_seconds"] for _, g in groups]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], build, width=0.4, label="build (executed actions)", color=_BUILD)
    ax.bar([x + 0.2 for x in xs], test, width=0.4, label="test", color=_TEST)
    for x, (_, g) in zip(xs, groups):
        if g["status"] in ("missing", "failed", "cached"):
            ax.annotate(g["status"], (x, 0), xytext=(0, 3), textcoords="offset points",
                        ha="center", fontsize=8, rotation=90, va="bottom",
                        color="#C44E52" if g["status"] == "failed" else "#555555")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(names, rotation=30, ha="right")
    ax.set_ylabel("seconds")
    ax.set_title(f"Build and test time per layer — {report['project_status']}")
    ax.legend()
    return _save(fig, path)


def _top(report: dict[str, Any], key: Any, n: int) -> list[tuple[str, dict[str, Any]]]:
    rows = [(label, t) for label, t in report["targets"].items() if key(t) > 0]
    rows.sort(key=lambda kv: key(kv[1]), reverse=True)
    return rows[:n]


def plot_top_time(report: dict[str, Any], path: Path, n: int = 15) -> str:
    def total(t: dict[str, Any]) -> float:
        return t["build_time_seconds"] + t.get("test_time_seconds", 0.0)

    rows = _top(report, total, n)[::-1]
    fig, ax = plt.subplots(figsize=(10, max(3.0, 0.35 * len(rows) + 1.2)))
    labels = [label for label, _ in rows]
    build = [t["build_time_seconds"] for _, t in rows]
    test = [t.get("test_time_seconds", 0.0) for _, t in rows]
    ax.barh(labels, build, color=_BUILD, label="build")
    ax.barh(labels, test, left=build, color=_TEST, label="test")
    ax.set_xlabel("seconds")
    ax.set_title(f"Top {len(rows)} targets by build + test time")
    ax.tick_params(axis="y", labelsize=8)
    ax.legend(loc="lower right")
    return _save(fig, path)


def _size_panel(ax: Any, rows: list[tuple[str, dict[str, Any]]], title: str, color: str) -> None:
    rows = rows[::-1]
    ax.barh([label for label, _ in rows], [t["output_bytes"] / 1024 for _, t in rows], color=color)
    ax.set_title(title)
    ax.set_xlabel("KiB of default outputs")
    ax.tick_params(axis="y", labelsize=8)


def plot_top_size(report: dict[str, Any], path: Path, n: int = 15) -> str:
    deliverables = _top(report, lambda t: t["output_bytes"] if t["deliverable"] else 0, n)
    everything = _top(report, lambda t: t["output_bytes"], n)
    height = max(2.5, 0.3 * len(deliverables) + 1.2) + max(2.5, 0.3 * len(everything) + 1.2)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, height),
                                      gridspec_kw={"height_ratios": [max(1, len(deliverables)), max(1, len(everything))]})
    _size_panel(top, deliverables, f"Top {len(deliverables)} deliverables (what binary_size_mb sums)", _BUILD)
    _size_panel(bottom, everything, f"Top {len(everything)} targets by output size (tests and libraries too)", _OTHER)
    return _save(fig, path)


def plot_cache(report: dict[str, Any], path: Path) -> str:
    cache = report["cache"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    remote = cache.get("actions_remote_executed", 0)
    executed = cache["actions_executed"] - remote
    hits = cache["actions_remote_cache_hit"]
    skipped = cache["actions_skipped"]
    left.bar(["executed\nlocally", "executed\nremotely", "remote cache hit", "local action cache /\nnot needed"],
             [executed, remote, hits, skipped], color=[_BUILD, _BUILD, _CACHED, _OTHER])
    rate = cache.get("hit_rate")
    left.set_title("Actions" + (f" — remote hit rate {rate:.1%}" if rate is not None else ""))
    left.set_ylabel("actions")
    tests = cache["tests"]
    cached = cache["tests_cached_locally"] + cache["tests_cached_remotely"]
    right.bar(["run", "cached locally", "cached remotely"],
              [tests - cached, cache["tests_cached_locally"], cache["tests_cached_remotely"]],
              color=[_TEST, _OTHER, _CACHED])
    trate = cache.get("test_cache_hit_rate")
    right.set_title("Tests" + (f" — cached {trate:.1%}" if trate is not None else ""))
    return _save(fig, path)


def _short(description: str, width: int = 70) -> str:
    if description.startswith("action '") and description.endswith("'"):
        description = description[len("action '"):-1]
    return description if len(description) <= width else description[: width - 1] + "…"


def plot_critical_path(report: dict[str, Any], path: Path) -> str:
    steps = report["critical_path"]["components"]
    fig, ax = plt.subplots(figsize=(10, max(2.5, 0.35 * len(steps) + 1.2)))
    labels = [_short(s["description"]) for s in steps]
    ax.barh(range(len(steps)), [s["seconds"] for s in steps], color=_BUILD)
    ax.set_yticks(range(len(steps)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.set_title(f"Critical path: {report['critical_path']['seconds']:.2f} s in {len(steps)} steps (first at the top)")
    return _save(fig, path)


def plot_trends(history: list[dict[str, Any]], path: Path) -> str:
    xs = list(range(1, len(history) + 1))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for key, color, name in (
        ("wall_time_seconds", _OTHER, "wall"),
        ("build_seconds", _BUILD, "build (sum of actions)"),
        ("test_seconds", _TEST, "test"),
        ("critical_path_seconds", "#8172B3", "critical path"),
    ):
        top.plot(xs, [h.get("total_times", {}).get(key, 0) or 0 for h in history], marker="o", color=color, label=name)
    top.set_ylabel("seconds")
    top.legend(fontsize=8)
    top.set_title(f"Trends over {len(history)} reports")
    rates = [h.get("cache_hit_rate") for h in history]
    bottom.plot(xs, [r * 100 if r is not None else float("nan") for r in rates], marker="o", color=_CACHED, label="remote cache hit rate")
    effs = [h.get("parallel_build_efficiency") for h in history]
    bottom.plot(xs, [e * 100 if e is not None else float("nan") for e in effs], marker="s", color=_BUILD, label="parallel build efficiency")
    bottom.set_ylabel("%")
    bottom.set_xlabel("report (UTC time it was generated; history.jsonl)")
    bottom.legend(fontsize=8)
    bottom.set_xticks(xs)
    bottom.set_xticklabels([f"{i}\n{str(h.get('build_timestamp', ''))[11:16]}" for i, h in zip(xs, history)], fontsize=8)
    return _save(fig, path)


def _layer_series(history: list[dict[str, Any]], name: str, value: Any) -> list[float]:
    """value(layer figures) per report; NaN where the report lacks the layer or the figure."""
    series = []
    for entry in history:
        layer = entry.get("layers", {}).get(name)
        figure = value(layer) if layer else None
        series.append(float("nan") if figure is None else float(figure))
    return series


def plot_layer_trends(history: list[dict[str, Any]], path: Path) -> str:
    """Build + test seconds of each layer over the history (a line per layer), and its
    line coverage where some report measured it."""
    xs = list(range(1, len(history) + 1))
    names = sorted({name for h in history for name, layer in h.get("layers", {}).items()
                    if layer.get("status") != "missing"}, key=group_order)  # a layer never built has no trend
    covered = [n for n in names if any("coverage_percent" in h.get("layers", {}).get(n, {}) for h in history)]
    fig, axes = plt.subplots(2 if covered else 1, 1, figsize=(10, 7 if covered else 4.5), sharex=True, squeeze=False)
    times, colors = axes[0][0], plt.get_cmap("tab10")
    for i, name in enumerate(names):
        times.plot(xs, _layer_series(history, name, lambda g: (g.get("build_time_seconds") or 0)
                                     + (g.get("test_time_seconds") or 0)), marker="o", color=colors(i % 10), label=name)
        if name in covered:
            axes[1][0].plot(xs, _layer_series(history, name, lambda g: g.get("coverage_percent")),
                            marker="s", color=colors(i % 10), label=name)
    times.set_ylabel("build + test time (s)")
    times.set_title(f"Per-layer build + test time over {len(history)} reports"
                    + ("" if names else " (no layer built yet)"))
    if covered:
        axes[1][0].axhline(COVERAGE_TARGET_PERCENT, color=pages.GREY, linestyle="--", label="target")
        axes[1][0].set_ylim(0, 100)
        axes[1][0].set_ylabel("line coverage, Python + Rust (%)")
        axes[1][0].set_title("Per-layer line coverage (reports that measured it)")
        axes[1][0].legend(fontsize=8, ncol=4)
        axes[1][0].grid(alpha=0.3)
    bottom = axes[-1][0]
    bottom.set_xlabel("report (history.jsonl, oldest first)")
    bottom.set_xticks(xs)
    if names:
        times.legend(fontsize=8, ncol=4)
    times.grid(alpha=0.3)
    return _save(fig, path)


def _card(name: str, group: dict[str, Any]) -> str:
    status = group["status"]
    figures = [("targets", "0")] if status == "missing" else [
        ("build", pages.seconds(group["build_time_seconds"])),
        ("test", pages.seconds(group["test_time_seconds"])),
        ("size", _megabytes(group["binary_size_mb"])),
        ("tests passed", f"{group.get('tests_passed', 0)}/{group['tests']}"),
    ]
    if "coverage_percent" in group and status != "missing":
        figures.append(("coverage", f"{group['coverage_percent']:.1f} %"))
    rows = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in figures)
    cls = html.escape(status)
    return (f'<div class="card {cls}" data-layer="{html.escape(name)}"><h3>{html.escape(name)} '
            f'<span class="badge {cls}">{cls}</span></h3><dl>{rows}</dl></div>')


def _megabytes(value: float) -> str:
    return f"{value:.3g} MB"


def _tiles(report: dict[str, Any]) -> str:
    totals, cache, system = report["total_times"], report["cache"], report["system_metrics"]
    return pages.tiles([
        ("status", report["project_status"]),
        ("wall time", pages.seconds(totals["wall_time_seconds"])),
        ("critical path", pages.seconds(totals["critical_path_seconds"])),
        ("deliverables", _megabytes(system["total_binary_size_mb"])),
        ("remote cache hits", pages.percent(cache.get("hit_rate"))),
        ("parallel build efficiency", pages.percent(system.get("parallel_build_efficiency"))),
    ])


def write(report: dict[str, Any], history: list[dict[str, Any]], out: Path, top_n: int = 15) -> list[Path]:
    """Writes the PNGs and index.html into `out`; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    trends = []
    if history:
        trends.append(("Trends: totals, cache and parallelism", plot_trends(history, out / "trends.png")))
        trends.append(("Trends: per layer", plot_layer_trends(history, out / "layer_trends.png")))
    build = [
        ("Build and test time per layer", plot_layer_times(report, out / "layer_times.png")),
        ("Critical path", plot_critical_path(report, out / "critical_path.png")),
        ("Cache", plot_cache(report, out / "cache.png")),
        ("Top targets by time", plot_top_time(report, out / "top_targets_time.png", top_n)),
        ("Top targets by size", plot_top_size(report, out / "top_targets_size.png", top_n)),
    ]

    groups = _groups(report)
    with_coverage = any("coverage_percent" in g for _, g in groups)
    layer_rows = [
        [name, g["status"], g["build_time_seconds"], g["test_time_seconds"], g["binary_size_mb"],
         g["targets"], f"{g.get('tests_passed', 0)}/{g['tests']}",
         *([g.get("coverage_percent", "-")] if with_coverage else [])]
        for name, g in groups
    ]
    totals = report["total_times"]
    system = report["system_metrics"]
    cache = report["cache"]
    summary = [
        ["project status", report["project_status"]],
        ["wall time (s)", totals["wall_time_seconds"]],
        ["build time, executed actions (s)", totals["build_seconds"]],
        ["test time (s)", totals["test_seconds"]],
        ["critical path (s)", totals["critical_path_seconds"]],
        ["parallel build efficiency (fraction)", system["parallel_build_efficiency"]],
        ["jobs", f"{system['jobs']} ({system['jobs_source']})"],
        ["remote cache hit rate (fraction)", cache.get("hit_rate")],
        ["machine", f"{system.get('nproc', '?')} x {system.get('cpu_model', '?')}"],
    ]
    nav = pages.link("#overview", "Overview") + pages.link("#trends", "Trends") + pages.link("#details", "Details")
    if (out / LOOP_PAGE).is_file():
        nav += pages.link(LOOP_PAGE, "Closed loop: last run")
    body = f"""<p class="muted">Generated {html.escape(report['build_timestamp'])} from
<code>bazel {html.escape(report.get('command', ''))}</code>; raw data: <code>build_metrics.json</code>.
Times in seconds (s), sizes in MB (10<sup>6</sup> bytes of deliverables), coverage in % of lines.</p>
<h2 id="overview">Overview</h2>
{_tiles(report)}
<div class="cards">{''.join(_card(name, g) for name, g in groups)}</div>
{pages.figures(build[:1], 3)}
<h2 id="trends">Trends</h2>
{pages.figures(trends, 3) if trends else '<p class="muted">No history: trends need history.jsonl.</p>'}
<h2 id="details">Details</h2>
<h3>Layers</h3>
{pages.table(["layer", "status", "build time (s)", "test time (s)", "binary size (MB)", "targets", "tests passed",
              *(["line coverage, Python + Rust (%)"] if with_coverage else [])], layer_rows, "layers")}
<h3>Build</h3>
{pages.table(["figure", "value"], summary, "build")}
{pages.figures(build[1:], 3)}"""
    index = out / "index.html"
    index.write_text(pages.document("Chimera build metrics", nav + pages.NAV_MARK, body))
    return [out / name for _, name in build + trends] + [index]
