"""The loop page's PNG plots (matplotlib, Agg backend): excess per generation, the
A/B test's held-out distributions, wall time and evaluations per phase, and the
evolved priority function over (item, remaining capacity)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from chimera.binpacking.genome import SEARCH_LEN, priority_table
from tools.metrics.report import pages

EXCESS = "excess of bins over the L1 bound (%, lower is better)"
#: The loop's phases in the order they run (tools/loop/closed_loop.py).
PHASE_ORDER = ("startup", "baseline", "trigger", "grant", "strategy", "evolve", "canary", "ab_test",
               "scoreboard", "generalisation")
#: The phases that spend layer-4 evaluations, in the same order.
EVALUATION_ORDER = ("baseline_stream", "evolution", "ab_test")


def plot_generations(summary: dict[str, Any], path: Path) -> str:
    gens = summary["evolution"]["generations"]
    xs = [g["generation"] for g in gens]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1.4]})
    top.plot(xs, [g["best_excess_pct"] for g in gens], marker="o", color=pages.BLUE, label="best of the generation")
    top.plot(xs, [g["mean_excess_pct"] for g in gens], marker="s", color=pages.ORANGE, label="population mean")
    screened = [g["generation"] for g in gens if g.get("source", "").startswith("twin")]
    if screened:
        top.axvspan(min(screened) - 0.5, max(screened) + 0.5, color=pages.GREY, alpha=0.15,
                    label="screened by layer 6's twin")
    if "baseline" in summary:
        top.axhline(summary["baseline"]["stream_excess_pct"], color=pages.GREY, linestyle="--",
                    label="Best Fit (on its stream instances)")
    top.set_ylabel(EXCESS, fontsize=8)
    top.set_yscale("log")
    evolution = summary["evolution"]
    top.set_title(f"Training excess per generation: population {evolution.get('population', '?')}, "
                  f"instances {evolution.get('training', '?')}")
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
    left.set_ylabel(f"held-out {EXCESS}", fontsize=8)
    left.set_title(f"Per instance, n = {len(base)} per arm (red: mean ± 95% CI)", fontsize=10)
    left.grid(alpha=0.3, axis="y")
    diffs = [c - b for b, c in zip(base, cand)]
    right.hist(diffs, bins=min(30, max(5, len(diffs) // 3)), color=pages.BLUE, alpha=0.8)
    right.axvline(0.0, color=pages.GREY, linestyle="--")
    right.axvline(float(np.mean(diffs)), color=pages.RED, label=f"mean {np.mean(diffs):+.4f}")
    right.set_xlabel("candidate − baseline, same held-out instance (excess, %)")
    right.set_ylabel("instances")
    right.set_title("Paired differences", fontsize=10)
    right.legend(fontsize=8)
    low, high = ab["hedges_g_ci"]
    fig.suptitle(f"Paired A/B on held-out instances: {ab['decision']} (paired t p = {ab['p_value']:.3g}, "
                 f"α = {ab['alpha']:g}; Hedges' g = {ab['hedges_g']:.2f} [{low:.2f}, {high:.2f}])")
    return pages.save_png(fig, path)


def plot_priority(parameters: list[float], capacity: int, title: str, path: Path) -> str:
    """The evolved priority over (item size, remaining capacity); the bin with the highest wins."""
    table = priority_table(np.asarray([parameters[:SEARCH_LEN]], np.float64), capacity)[0]
    shown = np.where(np.isfinite(table), table, np.nan)[1:, :]  # sizes 1..C
    fig, ax = plt.subplots(figsize=(8, 6))
    image = ax.imshow(shown.T, origin="lower", aspect="auto", cmap="viridis",
                      extent=(0.5, capacity + 0.5, -0.5, capacity + 0.5))
    fig.colorbar(image, ax=ax, label="priority (only the order within a column matters)")
    ax.set_xlabel("item size")
    ax.set_ylabel("remaining capacity of the bin (top row: a new bin, its bias included)")
    ax.set_title(title, fontsize=10)
    return pages.save_png(fig, path)


def in_order(values: dict[str, Any], order: tuple[str, ...]) -> list[tuple[str, Any]]:
    """The known names in `order`, then any others as they come."""
    return [(k, values[k]) for k in order if k in values] + [(k, v) for k, v in values.items() if k not in order]


def phases(summary: dict[str, Any]) -> list[tuple[str, float]]:
    return in_order(summary["phases_s"], PHASE_ORDER)


def evaluations(summary: dict[str, Any]) -> list[tuple[str, int]]:
    return [(k, v) for k, v in in_order(summary.get("evaluations", {}), EVALUATION_ORDER) if k != "total"]


def plot_phases(summary: dict[str, Any], path: Path) -> str:
    by_phase = phases(summary)[::-1]
    spent = evaluations(summary)[::-1]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.barh([n for n, _ in by_phase], [s for _, s in by_phase], color=pages.BLUE)
    for y, (_, s) in enumerate(by_phase):
        left.annotate(pages.seconds(s), (s, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    left.set_xlabel("wall time (s)")
    elapsed = f" — {summary['elapsed_s']:.1f} s start to stop" if "elapsed_s" in summary else ""
    left.set_title(f"Wall time per phase{elapsed}", fontsize=10)
    left.margins(x=0.15)
    right.barh([n for n, _ in spent], [v for _, v in spent], color=pages.ORANGE)
    for y, (_, v) in enumerate(spent):
        right.annotate(str(v), (v, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    right.set_xlabel("layer-4 evaluations (genome × instance pairs)")
    total = summary.get("evaluations", {}).get("total")
    right.set_title("Evaluations per phase" + (f" — {total} in all" if total is not None else ""), fontsize=10)
    right.margins(x=0.15)
    return pages.save_png(fig, path)
