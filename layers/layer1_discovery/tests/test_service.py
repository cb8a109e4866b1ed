"""DiscoveryService on a real loopback server: behaviour and bad input."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import timestamp_pb2

from chimera.discovery.config import DiscoveryConfig
from chimera.discovery.main import build_server, parse_args
from chimera.framework import ServerConfig
from chimera.v1 import common_pb2, discovery_pb2, discovery_pb2_grpc

ABOVE = discovery_pb2.COMPARISON_ABOVE

# Rules that always fire on any host, one per severity, plus one that never does.
CONFIG = {
    "collection_interval_ms": 100,
    "window_size": 5,
    "ewma_alpha": 0.5,
    "alert_retention": 50,
    "top_processes": 2,
    "window_metrics": ["memory.total", "cpu.utilization"],
    "toolchains": ["python3"],
    "thresholds": [
        {"metric": "memory.total", "comparison": "above", "value": 0, "severity": "critical"},
        {"metric": "cpu.count.logical", "comparison": "below", "value": 1e9, "severity": "warning"},
        {"metric": "process.count", "comparison": "above", "value": 0, "severity": "info"},
        {"metric": "memory.total", "comparison": "below", "value": 0, "severity": "critical"},
    ],
}


@pytest.fixture(scope="module")
def stub() -> Iterator[discovery_pb2_grpc.DiscoveryServiceStub]:
    server = build_server(ServerConfig(port=0, metrics_port=None), DiscoveryConfig.from_mapping(CONFIG))
    with server, grpc.insecure_channel(server.target) as channel:
        yield discovery_pb2_grpc.DiscoveryServiceStub(channel)


def names(batch: discovery_pb2.DataBatch) -> set[str]:
    return {p.name for p in batch.points}


def test_collect_runs_the_requested_probes(stub: discovery_pb2_grpc.DiscoveryServiceStub) -> None:
    batch = stub.Collect(discovery_pb2.CollectRequest(probes=[discovery_pb2.PROBE_MEMORY]))
    assert names(batch) == {
        "memory.total", "memory.available", "memory.used", "memory.utilization",
        "swap.total", "swap.used", "swap.utilization",
    }
    assert batch.sequence == 1 and batch.source
    assert batch.collection_time_ms >= 0
    assert abs(batch.collected_at.ToSeconds() - time.time()) < 60


def test_collect_without_probes_runs_all(stub: discovery_pb2_grpc.DiscoveryServiceStub) -> None:
    found = names(stub.Collect(discovery_pb2.CollectRequest()))
    for metric in (
        "cpu.utilization", "memory.total", "process.count", "toolchain.available",
        "accelerator.count", "os.info",
    ):
        assert metric in found
    assert not any(".window." in n for n in found)  # one sample: no window statistics


def test_stream_sends_numbered_batches_with_window_statistics(
    stub: discovery_pb2_grpc.DiscoveryServiceStub,
) -> None:
    request = discovery_pb2.StreamObservationsRequest(
        probes=[discovery_pb2.PROBE_MEMORY], interval_ms=100, max_batches=3
    )
    started = time.monotonic()
    batches = list(stub.StreamObservations(request, timeout=10))
    assert [b.sequence for b in batches] == [1, 2, 3]
    assert time.monotonic() - started >= 0.2  # paced by interval_ms
    last = {p.name: p for p in batches[-1].points}
    total = last["memory.total"].value
    mean = last["memory.total.window.mean"]
    assert mean.labels["window"] == "3" and mean.value == pytest.approx(total)
    assert last["memory.total.window.stddev"].value == pytest.approx(0.0, abs=1e-3)
    assert "memory.total.window.p99" in last and mean.unit == "bytes"


def test_stream_can_be_cancelled(stub: discovery_pb2_grpc.DiscoveryServiceStub) -> None:
    call = stub.StreamObservations(
        discovery_pb2.StreamObservationsRequest(
            probes=[discovery_pb2.PROBE_MEMORY], interval_ms=100
        )
    )
    first = next(call)
    assert first.sequence == 1
    call.cancel()
    with pytest.raises(grpc.RpcError) as err:
        for _ in call:
            pass
    assert err.value.code() == grpc.StatusCode.CANCELLED


def wait_for_alerts(stub: discovery_pb2_grpc.DiscoveryServiceStub) -> list[discovery_pb2.Alert]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alerts = list(stub.GetAlerts(discovery_pb2.GetAlertsRequest()).alerts)
        if len(alerts) >= 6:
            return alerts
        time.sleep(0.05)
    raise AssertionError("the background collection raised no alerts")


def test_background_collection_raises_configured_alerts(
    stub: discovery_pb2_grpc.DiscoveryServiceStub,
) -> None:
    alerts = wait_for_alerts(stub)
    newest = alerts[:3]
    assert [a.severity for a in newest] == [
        common_pb2.SEVERITY_CRITICAL, common_pb2.SEVERITY_WARNING, common_pb2.SEVERITY_INFO,
    ]
    critical = newest[0]
    assert critical.metric == "memory.total" and critical.threshold == 0
    assert critical.comparison == discovery_pb2.COMPARISON_ABOVE
    assert critical.message.startswith("memory.total ") and "above 0.0" in critical.message
    times = [a.raised_at.ToNanoseconds() for a in alerts]
    assert times == sorted(times, reverse=True)


def test_get_alerts_filters(stub: discovery_pb2_grpc.DiscoveryServiceStub) -> None:
    wait_for_alerts(stub)
    crit = stub.GetAlerts(
        discovery_pb2.GetAlertsRequest(min_severity=common_pb2.SEVERITY_WARNING, limit=4)
    ).alerts
    assert len(crit) == 4
    assert all(a.severity >= common_pb2.SEVERITY_WARNING for a in crit)
    future = timestamp_pb2.Timestamp(seconds=int(time.time()) + 3600)
    assert not stub.GetAlerts(discovery_pb2.GetAlertsRequest(since=future)).alerts
    assert len(stub.GetAlerts(discovery_pb2.GetAlertsRequest()).alerts) <= 50


def test_evaluate_thresholds_on_a_given_batch(
    stub: discovery_pb2_grpc.DiscoveryServiceStub,
) -> None:
    batch = discovery_pb2.DataBatch(
        points=[
            discovery_pb2.DataPoint(name="disk.utilization", value=97.0, unit="percent",
                                    labels={"mount": "/"}),
            discovery_pb2.DataPoint(name="disk.utilization", value=88.0, unit="percent",
                                    labels={"mount": "/data"}),
            discovery_pb2.DataPoint(name="disk.utilization", value=10.0, unit="percent"),
        ]
    )
    thresholds = [
        discovery_pb2.Threshold(metric="disk.utilization", comparison=ABOVE, value=85,
                                severity=common_pb2.SEVERITY_WARNING),
        discovery_pb2.Threshold(metric="disk.utilization", comparison=ABOVE, value=95,
                                severity=common_pb2.SEVERITY_CRITICAL),
    ]
    resp = stub.EvaluateThresholds(
        discovery_pb2.EvaluateThresholdsRequest(batch=batch, thresholds=thresholds)
    )
    assert [(a.severity, a.labels["mount"]) for a in resp.alerts] == [
        (common_pb2.SEVERITY_CRITICAL, "/"), (common_pb2.SEVERITY_WARNING, "/data"),
    ]
    assert resp.alerts[0].message == "disk.utilization 97.0 percent above 95.0 (critical)"
    assert resp.batch == batch
    before = len(stub.GetAlerts(discovery_pb2.GetAlertsRequest(limit=10000)).alerts)
    assert before <= 50  # evaluation records nothing beyond the background's own alerts


def test_evaluate_thresholds_defaults_to_fresh_batch_and_config(
    stub: discovery_pb2_grpc.DiscoveryServiceStub,
) -> None:
    resp = stub.EvaluateThresholds(discovery_pb2.EvaluateThresholdsRequest())
    assert "memory.total" in names(resp.batch)
    assert {a.metric for a in resp.alerts} == {"memory.total", "cpu.count.logical", "process.count"}


BAD_REQUESTS = [
    ("Collect", discovery_pb2.CollectRequest(probes=[0]), "probes[0]"),
    ("Collect", discovery_pb2.CollectRequest(probes=[1, 99]), "probes[1]"),
    ("Collect", discovery_pb2.CollectRequest(probes=[1] * 17), "probes"),
    ("StreamObservations", discovery_pb2.StreamObservationsRequest(interval_ms=0), "interval_ms"),
    ("StreamObservations",
     discovery_pb2.StreamObservationsRequest(interval_ms=3600001), "interval_ms"),
    ("StreamObservations",
     discovery_pb2.StreamObservationsRequest(interval_ms=100, probes=[42]), "probes[0]"),
    ("GetAlerts", discovery_pb2.GetAlertsRequest(limit=10001), "limit"),
    ("GetAlerts", discovery_pb2.GetAlertsRequest(min_severity=9), "min_severity"),
    ("EvaluateThresholds",
     discovery_pb2.EvaluateThresholdsRequest(thresholds=[discovery_pb2.Threshold(
         comparison=1, severity=1)]), "thresholds[0].metric"),
    ("EvaluateThresholds",
     discovery_pb2.EvaluateThresholdsRequest(thresholds=[discovery_pb2.Threshold(
         metric="m", severity=1)]), "thresholds[0].comparison"),
    ("EvaluateThresholds",
     discovery_pb2.EvaluateThresholdsRequest(thresholds=[discovery_pb2.Threshold(
         metric="m", comparison=3, severity=1)]), "thresholds[0].comparison"),
    ("EvaluateThresholds",
     discovery_pb2.EvaluateThresholdsRequest(thresholds=[discovery_pb2.Threshold(
         metric="m", comparison=1, severity=8)]), "thresholds[0].severity"),
    ("EvaluateThresholds",
     discovery_pb2.EvaluateThresholdsRequest(thresholds=[discovery_pb2.Threshold(
         metric="m", comparison=1, severity=1, value=float("nan"))]), "thresholds[0].value"),
    ("EvaluateThresholds",
     discovery_pb2.EvaluateThresholdsRequest(batch=discovery_pb2.DataBatch(
         points=[discovery_pb2.DataPoint(name="x", value=float("inf"))])), "batch.points[0].value"),
    ("EvaluateThresholds",
     discovery_pb2.EvaluateThresholdsRequest(batch=discovery_pb2.DataBatch(
         points=[discovery_pb2.DataPoint(value=1)])), "batch.points[0].name"),
]


@pytest.mark.parametrize(("method", "request_", "field"), BAD_REQUESTS)
def test_bad_input_is_invalid_argument_naming_the_field(
    stub: discovery_pb2_grpc.DiscoveryServiceStub, method: str, request_: object, field: str
) -> None:
    call = getattr(stub, method)
    with pytest.raises(grpc.RpcError) as err:
        result = call(request_, timeout=10)
        if method == "StreamObservations":
            list(result)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"'{field}'" in err.value.details()


def test_flags_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAYER1_PORT", "6000")
    config, path = parse_args(["--metrics-port", "off", "--max-workers", "3"])
    assert (config.host, config.port, config.metrics_port, config.max_workers) == (
        "127.0.0.1", 6000, None, 3
    )
    assert path is None
    config, _ = parse_args(["--port", "0", "--host", "::1"])
    assert config.port == 0 and config.bind_address == "[::1]:0"
