"""The registry's exposition (names, labels, help, types) and its refusals."""

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

    # The classic series only: no *_created, in the order of registration.
    assert registry.render().splitlines() == [
        "# HELP layer4_tasks_total Tasks by final status.",
        "# TYPE layer4_tasks_total counter",
        'layer4_tasks_total{status="done"} 3.0',
        'layer4_tasks_total{status="failed"} 1.0',
        "# HELP layer4_queue_depth Tasks waiting.",
        "# TYPE layer4_queue_depth gauge",
        "layer4_queue_depth 4.0",
        "# HELP layer4_latency_seconds Task latency.",
        "# TYPE layer4_latency_seconds histogram",
        'layer4_latency_seconds_bucket{le="0.1"} 2.0',
        'layer4_latency_seconds_bucket{le="1.0"} 3.0',
        'layer4_latency_seconds_bucket{le="+Inf"} 4.0',
        "layer4_latency_seconds_count 4.0",
        "layer4_latency_seconds_sum 3.65",
    ]
    assert registry.sample("layer4_tasks_total", status="done") == 3
    assert registry.sample("layer4_tasks_total", status="never") == 0
    assert registry.sample("layer4_latency_seconds_count") == 4
    with pytest.raises(KeyError, match="layer4_unknown"):
        registry.sample("layer4_unknown")


def test_label_values_and_help_are_escaped() -> None:
    registry = MetricsRegistry()
    counter = registry.counter("x_total", 'Help with \\ and\nnewline.', ("path",))
    counter.labels(path='a"b\\c\nd').inc()
    text = registry.render()
    assert "# HELP x_total Help with \\\\ and\\nnewline." in text
    assert 'x_total{path="a\\"b\\\\c\\nd"} 1.0' in text


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
        lambda r: r.counter("bad name_total", "x"),
        lambda r: r.gauge("naïve", "x"),
        lambda r: r.counter("ok", "x"),
        lambda r: r.counter("ok_total", "x", ("__reserved",)),
        lambda r: r.counter("ok_total", "x", ("a", "a")),
        lambda r: r.histogram("h", "x", ("le",)),
        lambda r: r.histogram("h", "x", buckets=(1.0, 0.5)),
    ],
    ids=["space", "utf8", "counter_without_total", "reserved_label", "duplicate_label", "le", "unsorted_buckets"],
)
def test_invalid_definitions_are_refused(make: object) -> None:
    with pytest.raises(ValueError):
        make(MetricsRegistry())  # type: ignore[operator]


def test_misuse_is_refused() -> None:
    registry = MetricsRegistry()
    counter = registry.counter("c_total", "c", ("status",))
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        registry.gauge("c_total", "again")
    with pytest.raises(ValueError, match="Incorrect label names"):
        counter.labels(state="x")
    with pytest.raises(ValueError, match="missing label values"):
        counter.inc()
    with pytest.raises(ValueError, match="non-negative"):
        counter.labels(status="x").inc(-1)


def test_registries_are_independent() -> None:
    first, second = MetricsRegistry(), MetricsRegistry()
    first.counter("same_total", "x").inc()
    second.counter("same_total", "x")
    assert "same_total 1.0" in first.render()
    assert "same_total 0.0" in second.render()
