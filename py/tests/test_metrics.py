"""The metrics registry's Prometheus text output, checked line by line."""

from __future__ import annotations

import math

import pytest

from chimera.framework import MetricsRegistry


def test_counter_gauge_histogram_render() -> None:
    registry = MetricsRegistry()
    tasks = registry.counter("layer4_tasks_total", "Tasks by final status.", ("status",))
    tasks.labels(status="done").inc()
    tasks.labels(status="done").inc(2)
    tasks.labels(status="failed").inc()
    depth = registry.gauge("layer4_queue_depth", "Tasks waiting.")
    depth.set(5)
    depth.dec()
    latency = registry.histogram("layer4_latency_seconds", "Task latency.", buckets=(0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 3.0):
        latency.observe(value)

    assert registry.render().splitlines() == [
        "# HELP layer4_latency_seconds Task latency.",
        "# TYPE layer4_latency_seconds histogram",
        'layer4_latency_seconds_bucket{le="0.1"} 2',
        'layer4_latency_seconds_bucket{le="1"} 3',
        'layer4_latency_seconds_bucket{le="+Inf"} 4',
        "layer4_latency_seconds_sum 3.65",
        "layer4_latency_seconds_count 4",
        "# HELP layer4_queue_depth Tasks waiting.",
        "# TYPE layer4_queue_depth gauge",
        "layer4_queue_depth 4",
        "# HELP layer4_tasks_total Tasks by final status.",
        "# TYPE layer4_tasks_total counter",
        'layer4_tasks_total{status="done"} 3',
        'layer4_tasks_total{status="failed"} 1',
    ]
    assert tasks.value(status="done") == 3
    assert latency.count() == 4


def test_label_values_and_help_are_escaped() -> None:
    registry = MetricsRegistry()
    counter = registry.counter("x_total", 'Help with \\ and\nnewline.', ("path",))
    counter.labels(path='a"b\\c\nd').inc()
    text = registry.render()
    assert "# HELP x_total Help with \\\\ and\\nnewline." in text
    assert 'x_total{path="a\\"b\\\\c\\nd"} 1' in text


def test_special_values() -> None:
    registry = MetricsRegistry()
    gauge = registry.gauge("g", "g")
    gauge.set(math.nan)
    assert "g NaN" in registry.render()
    gauge.set(math.inf)
    assert "g +Inf" in registry.render()


@pytest.mark.parametrize(
    "make",
    [
        lambda r: r.counter("bad name", "x"),
        lambda r: r.counter("ok_total", "x", ("__reserved",)),
        lambda r: r.counter("ok_total", "x", ("a", "a")),
        lambda r: r.histogram("h", "x", ("le",)),
        lambda r: r.histogram("h", "x", buckets=(1.0, 0.5)),
    ],
)
def test_invalid_definitions_are_refused(make: object) -> None:
    with pytest.raises(ValueError):
        make(MetricsRegistry())  # type: ignore[operator]


def test_misuse_is_refused() -> None:
    registry = MetricsRegistry()
    counter = registry.counter("c_total", "c", ("status",))
    with pytest.raises(ValueError, match="already registered"):
        registry.gauge("c_total", "again")
    with pytest.raises(ValueError, match="takes labels"):
        counter.labels(state="x")
    with pytest.raises(ValueError, match="needs labels"):
        counter.inc()
    with pytest.raises(ValueError, match="only increase"):
        counter.labels(status="x").inc(-1)
    with pytest.raises(ValueError, match="only for gauges"):
        counter.labels(status="x").set(3)


def test_registries_are_independent() -> None:
    first, second = MetricsRegistry(), MetricsRegistry()
    first.counter("same_total", "x").inc()
    second.counter("same_total", "x")
    assert "same_total 1" in first.render()
    assert "same_total 1" not in second.render()
