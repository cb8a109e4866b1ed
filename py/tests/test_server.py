"""A real ChimeraServer on loopback: health, reflection, validation, errors, deadlines, metrics, logs."""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import urllib.error
import urllib.request

import grpc
from prometheus_client.parser import text_string_to_metric_families
import pytest
from echo_servicer import SERVICE, EchoServicer, StartServer, registration
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from chimera.framework import (
    ChimeraServer,
    MetricsRegistry,
    ServerConfig,
    ServiceRegistration,
    StopHooks,
)
from chimera.testing.v1 import echo_pb2, echo_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def good_request() -> echo_pb2.EchoRequest:
    return echo_pb2.EchoRequest(message="hello", priority=5, weight=0.5)


def rpc_error(call: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    return caught.value


# --- health and reflection ----------------------------------------------------
def test_health_reports_per_service_status(server: ChimeraServer, channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)

    def check(service: str) -> int:
        return health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status

    assert check("") == SERVING
    assert check(SERVICE) == SERVING
    server.set_serving(SERVICE, False)
    assert check(SERVICE) == NOT_SERVING
    assert check("") == SERVING
    server.set_serving(SERVICE, True)
    assert check(SERVICE) == SERVING
    error = rpc_error(lambda: check("no.such.Service"))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(ValueError, match="unknown service"):
        server.set_serving("no.such.Service", False)


def test_health_turns_not_serving_during_shutdown(start_server: StartServer) -> None:
    server = start_server(grace_seconds=5.0)
    with grpc.insecure_channel(server.target) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=SERVICE), timeout=10
        )
        assert next(watch).status == SERVING
        slow = echo_pb2_grpc.EchoServiceStub(channel).Slow.future(
            echo_pb2.SlowRequest(sleep_ms=300), timeout=10
        )
        time.sleep(0.1)
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        assert next(watch).status == NOT_SERVING
        watch.cancel()
        assert slow.result().message == "slow"  # in flight when the stop began: it completes
        stopper.join(timeout=10)
        assert not stopper.is_alive()


def test_reflection_lists_the_services(channel: grpc.Channel) -> None:
    services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
    assert services == {
        SERVICE,
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }


# --- validation and bad input -----------------------------------------------
def _changed(**fields: object) -> echo_pb2.EchoRequest:
    request = good_request()
    for name, value in fields.items():
        if name == "samples":
            request.samples.extend(value)  # type: ignore[arg-type]
        else:
            setattr(request, name, value)
    return request


@pytest.mark.parametrize(
    ("request_", "details"),
    [
        (_changed(message=""), "field 'message' is required"),
        (_changed(priority=0), "field 'priority' must be >= 1 (got 0)"),
        (_changed(priority=1000), "field 'priority' must be <= 100 (got 1000)"),
        (_changed(weight=math.nan), "field 'weight' must be finite (got nan)"),
        (_changed(message="y" * 100), "field 'message' must have at most 64 characters (got 100)"),
        (
            _changed(samples=[echo_pb2.Sample(latency_ms=1), echo_pb2.Sample(latency_ms=math.inf)]),
            "field 'samples[1].latency_ms' must be finite (got inf)",
        ),
    ],
)
def test_bad_input_is_invalid_argument_and_server_keeps_serving(
    stub: echo_pb2_grpc.EchoServiceStub,
    servicer: EchoServicer,
    request_: echo_pb2.EchoRequest,
    details: str,
) -> None:
    error = rpc_error(lambda: stub.Echo(request_, timeout=5))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == details
    assert servicer.calls["Echo"] == 0  # rejected before the handler ran
    assert stub.Echo(good_request(), timeout=5).message == "hello"


def test_oversized_message_is_resource_exhausted(start_server: StartServer) -> None:
    server = start_server(max_message_bytes=64 * 1024)
    with grpc.insecure_channel(server.target) as channel:
        stub = echo_pb2_grpc.EchoServiceStub(channel)
        huge = _changed(blob=b"\0" * (100 * 1024))
        error = rpc_error(lambda: stub.Echo(huge, timeout=5))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "larger than max" in error.details()
        assert stub.Echo(good_request(), timeout=5).message == "hello"


def test_streaming_request_is_validated_and_streamed(stub: echo_pb2_grpc.EchoServiceStub) -> None:
    replies = list(stub.Count(echo_pb2.CountRequest(count=4), timeout=5))
    assert [r.index for r in replies] == [0, 1, 2, 3]
    error = rpc_error(lambda: list(stub.Count(echo_pb2.CountRequest(count=0), timeout=5)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "field 'count' must be >= 1 (got 0)"


# --- error mapping -------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "code", "details"),
    [
        ("invalid_argument", grpc.StatusCode.INVALID_ARGUMENT, "field 'kind' must name a real failure"),
        ("failed_precondition", grpc.StatusCode.FAILED_PRECONDITION, "the plan has not been validated"),
        ("not_found", grpc.StatusCode.NOT_FOUND, "task t-1 does not exist"),
        ("resource_exhausted", grpc.StatusCode.RESOURCE_EXHAUSTED, "queue is full (capacity 2)"),
        ("abort", grpc.StatusCode.PERMISSION_DENIED, "handler chose this status"),
    ],
)
def test_service_errors_map_to_status_codes(
    stub: echo_pb2_grpc.EchoServiceStub, kind: str, code: grpc.StatusCode, details: str
) -> None:
    error = rpc_error(lambda: stub.Fail(echo_pb2.FailRequest(kind=kind), timeout=5))
    assert (error.code(), error.details()) == (code, details)


def test_unexpected_exception_is_internal_with_request_id(
    stub: echo_pb2_grpc.EchoServiceStub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="chimera.rpc")
    request = echo_pb2.FailRequest(kind="crash")
    error = rpc_error(
        lambda: stub.Fail(request, timeout=5, metadata=(("x-request-id", "req-42"),))
    )
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details() == "internal error (request_id=req-42)"
    assert "secret-token" not in error.details() and "Traceback" not in error.details()
    assert ("x-request-id", "req-42") in tuple(error.trailing_metadata())
    # The traceback goes to the server log, tagged with the same id.
    logged = [r for r in caplog.records if r.exc_info and "req-42" in r.getMessage()]
    assert len(logged) == 1


def test_request_id_is_generated_and_echoed(stub: echo_pb2_grpc.EchoServiceStub) -> None:
    _, call = stub.Echo.with_call(good_request(), timeout=5)
    trailers = dict(call.trailing_metadata())
    assert len(trailers["x-request-id"]) == 32


# --- deadlines -------------------------------------------------------------------
def test_client_deadline_is_honoured(stub: echo_pb2_grpc.EchoServiceStub) -> None:
    start = time.monotonic()
    error = rpc_error(lambda: stub.Slow(echo_pb2.SlowRequest(sleep_ms=3000), timeout=0.2))
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - start < 1.5


def test_server_default_deadline_applies_without_client_deadline(
    start_server: StartServer,
) -> None:
    server = start_server(default_deadline_seconds=0.3)
    with grpc.insecure_channel(server.target) as channel:
        stub = echo_pb2_grpc.EchoServiceStub(channel)
        # A handler that polls context.time_remaining() stops at the deadline.
        start = time.monotonic()
        error = rpc_error(lambda: stub.Slow(echo_pb2.SlowRequest(sleep_ms=5000)))
        elapsed = time.monotonic() - start
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert error.details() == "server default deadline of 0.3 s exceeded"
        assert 0.25 < elapsed < 2.0
        # One that ignores it is answered DEADLINE_EXCEEDED when it returns; its reply is dropped.
        request = echo_pb2.SlowRequest(sleep_ms=500, ignore_deadline=True)
        error = rpc_error(lambda: stub.Slow(request))
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        # A call that finishes in time is unaffected.
        assert stub.Slow(echo_pb2.SlowRequest(sleep_ms=10, message="quick")).message == "quick"


def test_request_expired_while_queued_never_runs(
    start_server: StartServer, servicer: EchoServicer
) -> None:
    server = start_server(max_workers=1)
    with grpc.insecure_channel(server.target) as channel:
        stub = echo_pb2_grpc.EchoServiceStub(channel)
        busy = stub.Slow.future(echo_pb2.SlowRequest(sleep_ms=400, ignore_deadline=True), timeout=5)
        time.sleep(0.1)
        error = rpc_error(lambda: stub.Echo(good_request(), timeout=0.1))
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        busy.result()
        assert stub.Echo(good_request(), timeout=5).message == "hello"
        assert servicer.calls["Echo"] == 1  # only the second Echo ran


# --- metrics and logs ---------------------------------------------------------------
def _scrape(port: int, path: str = "/metrics") -> tuple[str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return response.headers["Content-Type"], response.read().decode("utf-8")


def test_metrics_endpoint_counts_rpcs(start_server: StartServer) -> None:
    registry = MetricsRegistry()
    tasks = registry.counter("layer4_tasks_total", "Tasks by status.", ("status",))
    tasks.labels(status="done").inc(3)
    server = start_server(metrics=registry)
    assert server.metrics is registry and server.metrics_port
    with grpc.insecure_channel(server.target) as channel:
        stub = echo_pb2_grpc.EchoServiceStub(channel)
        stub.Echo(good_request(), timeout=5)
        stub.Echo(good_request(), timeout=5)
        rpc_error(lambda: stub.Echo(_changed(priority=0), timeout=5))
        list(stub.Count(echo_pb2.CountRequest(count=2), timeout=5))

    content_type, text = _scrape(server.metrics_port)
    assert content_type.startswith("text/plain; version=0.0.4")
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert families["grpc_server_handled"].type == "counter"
    assert families["grpc_server_handling_seconds"].type == "histogram"
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families.values()
        for sample in family.samples
    }
    echo = (("grpc_method", "Echo"), ("grpc_service", "chimera.testing.v1.EchoService"), ("grpc_type", "unary"))
    count = (("grpc_method", "Count"), ("grpc_service", "chimera.testing.v1.EchoService"), ("grpc_type", "server_stream"))
    assert samples["grpc_server_handled_total", tuple(sorted((*echo, ("grpc_code", "OK"))))] == 2
    assert samples["grpc_server_handled_total", tuple(sorted((*echo, ("grpc_code", "INVALID_ARGUMENT"))))] == 1
    assert samples["grpc_server_handled_total", tuple(sorted((*count, ("grpc_code", "OK"))))] == 1
    assert samples["grpc_server_started_total", echo] == 3
    assert samples["grpc_server_handling_seconds_count", echo] == 3
    assert samples["grpc_server_handling_seconds_bucket", tuple(sorted((*echo, ("le", "+Inf"))))] == 3
    assert samples["layer4_tasks_total", (("status", "done"),)] == 3
    with pytest.raises(urllib.error.HTTPError) as caught:
        _scrape(server.metrics_port, "/other")
    assert caught.value.code == 404


def test_metrics_port_none_disables_endpoint(start_server: StartServer) -> None:
    assert start_server(metrics_port=None).metrics_port is None


def test_access_log_is_one_json_line_per_rpc_without_bodies(
    stub: echo_pb2_grpc.EchoServiceStub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="chimera.rpc")
    secret = "hunter2-password"
    stub.Echo(_changed(message=secret), timeout=5, metadata=(("x-request-id", "abc"),))
    rpc_error(lambda: stub.Echo(_changed(message=secret, priority=0), timeout=5))
    entries = [json.loads(r.getMessage()) for r in caplog.records if '"event": "rpc"' in r.getMessage()]
    assert [e["code"] for e in entries] == ["OK", "INVALID_ARGUMENT"]
    first = entries[0]
    assert first["method"] == "/chimera.testing.v1.EchoService/Echo"
    assert first["request_id"] == "abc"
    assert first["peer"].startswith("ipv4:127.0.0.1:")
    assert isinstance(first["latency_ms"], float) and first["latency_ms"] >= 0
    assert entries[1]["details"] == "field 'priority' must be >= 1 (got 0)"
    assert secret not in caplog.text


# --- construction ------------------------------------------------------------------------
def test_unknown_service_name_is_refused(servicer: EchoServicer) -> None:
    bad = ServiceRegistration(
        echo_pb2_grpc.add_EchoServiceServicer_to_server, servicer, "chimera.testing.v1.Nope"
    )
    with pytest.raises(ValueError, match="not in the protobuf descriptor pool"):
        ChimeraServer(ServerConfig(), [bad])


def test_busy_port_fails_loudly(server: ChimeraServer, servicer: EchoServicer) -> None:
    from echo_servicer import registration

    second = ChimeraServer(ServerConfig(port=server.port, metrics_port=None), [registration(servicer)])
    with pytest.raises(RuntimeError, match="cannot bind"):
        second.start()
    second.stop(0)


def test_stop_hooks_run_around_the_drain_in_order(servicer: EchoServicer) -> None:
    events: list[str] = []

    def failing() -> None:
        events.append("failing")
        raise RuntimeError("a hook that breaks must not stop the others")

    server = ChimeraServer(
        ServerConfig(port=0, metrics_port=None, grace_seconds=0.0),
        [registration(servicer)],
        on_stop=StopHooks(
            before_drain=[lambda: events.append("end streams"), failing],
            after_drain=[lambda: events.append("close")],
        ),
    )
    with server:
        events.append("serving")
    server.stop()  # a second stop runs nothing again
    assert events == ["serving", "end streams", "failing", "close"]


def test_after_drain_hooks_run_when_the_server_cannot_bind(servicer: EchoServicer) -> None:
    closed: list[bool] = []
    with ChimeraServer(ServerConfig(port=0, metrics_port=None), [registration(servicer)]) as first:
        second = ChimeraServer(
            ServerConfig(port=first.port, metrics_port=None),
            [registration(servicer)],
            on_stop=StopHooks(after_drain=[lambda: closed.append(True)]),
        )
        with pytest.raises(RuntimeError, match="cannot bind"):
            second.start()
    assert closed == [True]


def test_after_start_hooks_run_once_serving_and_a_failing_one_stops_the_server(
    servicer: EchoServicer,
) -> None:
    health_seen: list[int] = []

    def probe() -> None:  # the background work of a layer starts only once it serves
        with grpc.insecure_channel(started.target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            health_seen.append(stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status)

    stopped: list[bool] = []
    started = ChimeraServer(
        ServerConfig(port=0, metrics_port=None), [registration(servicer)], after_start=[probe]
    )
    with started:
        assert health_seen == [SERVING]

    def broken() -> None:
        raise OSError("collector thread could not start")

    failing = ChimeraServer(
        ServerConfig(port=0, metrics_port=None),
        [registration(servicer)],
        on_stop=StopHooks(before_drain=[lambda: stopped.append(True)]),
        after_start=[broken],
    )
    with pytest.raises(OSError, match="could not start"):
        failing.start()
    assert stopped == [True]
    with pytest.raises(RuntimeError, match="started once"):
        failing.start()
