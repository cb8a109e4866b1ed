"""ChimeraClient against real servers: deadlines, retries, channel reuse, and the circuit breaker."""

from __future__ import annotations

import json
import threading
import time

import grpc
import pytest
from echo_servicer import SERVICE, EchoServicer, StartServer

from chimera.framework import (
    BreakerState,
    ChimeraClient,
    ChimeraServer,
    CircuitBreaker,
    CircuitOpenError,
    ClientConfig,
    RetryPolicy,
    UpstreamError,
)
from chimera.testing.helpers import FakeClock, free_port
from chimera.testing.v1 import echo_pb2, echo_pb2_grpc


def good_request() -> echo_pb2.EchoRequest:
    return echo_pb2.EchoRequest(message="hello", priority=5)


# --- breaker state machine ------------------------------------------------------
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


def test_breaker_opens_after_consecutive_failures_only() -> None:
    breaker = CircuitBreaker("t", failure_threshold=3, cooldown_seconds=10, clock=FakeClock())
    for code in (UNAVAILABLE, UNAVAILABLE, grpc.StatusCode.OK, UNAVAILABLE, UNAVAILABLE):
        breaker.acquire()
        breaker.record(code)
    assert breaker.state is BreakerState.CLOSED  # the success reset the run
    breaker.acquire()
    breaker.record(grpc.StatusCode.DEADLINE_EXCEEDED)
    assert breaker.state is BreakerState.OPEN
    stats = breaker.stats
    assert (stats.failures, stats.successes, stats.opened, stats.consecutive_failures) == (5, 1, 1, 3)


def test_healthy_answers_and_cancellations_do_not_open() -> None:
    breaker = CircuitBreaker("t", failure_threshold=1, clock=FakeClock())
    for code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.CANCELLED):
        breaker.acquire()
        breaker.record(code)
    assert breaker.state is BreakerState.CLOSED


def test_half_open_allows_one_trial_then_closes_or_reopens() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("t", failure_threshold=1, cooldown_seconds=10, clock=clock)
    breaker.acquire()
    breaker.record(UNAVAILABLE)
    with pytest.raises(CircuitOpenError) as caught:
        breaker.acquire()
    assert caught.value.code() == UNAVAILABLE
    assert "next trial call in 10.0 s" in caught.value.details()

    clock.advance(10)
    assert breaker.state is BreakerState.HALF_OPEN
    trial = breaker.acquire()
    assert trial is True
    with pytest.raises(CircuitOpenError, match="trial call is in progress"):
        breaker.acquire()  # only one trial at a time
    breaker.record(UNAVAILABLE, trial=trial)
    assert breaker.state is BreakerState.OPEN  # the failed trial re-opened it for a full cool-down
    clock.advance(9.9)
    assert breaker.state is BreakerState.OPEN
    clock.advance(0.1)
    trial = breaker.acquire()
    breaker.record(grpc.StatusCode.OK, trial=trial)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.stats.rejected == 2


def test_breaker_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker("t", failure_threshold=0)
    with pytest.raises(ValueError, match="cooldown_seconds"):
        CircuitBreaker("t", cooldown_seconds=0)


# --- breaker over the network ------------------------------------------------------
def test_breaker_fails_fast_against_a_stopped_server_and_recovers(
    start_server: StartServer,
) -> None:
    server = start_server()
    target, port = server.target, server.port
    server.stop(0)
    clock = FakeClock()
    config = ClientConfig(
        default_deadline_seconds=2.0,
        breaker_failure_threshold=3,
        breaker_cooldown_seconds=30.0,
        max_reconnect_backoff_seconds=0.2,
    )
    with ChimeraClient(config, clock=clock) as client:
        stub = client.stub(echo_pb2_grpc.EchoServiceStub, target)
        breaker = client.breaker_for(target)
        for _ in range(3):
            with pytest.raises(grpc.RpcError) as caught:
                stub.Echo(good_request())
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert breaker.state is BreakerState.OPEN

        # The server comes back, but while the breaker is open nothing reaches it.
        revived = EchoServicer()
        start_server(port=port, echo=revived)
        started = time.perf_counter()
        with pytest.raises(CircuitOpenError):
            stub.Echo(good_request())
        assert time.perf_counter() - started < 0.25  # no connect, no deadline wait
        assert revived.calls["Echo"] == 0
        assert breaker.stats.rejected == 1

        clock.advance(30.0)
        assert breaker.state is BreakerState.HALF_OPEN
        grpc.channel_ready_future(client.channel_for(target)).result(timeout=5)
        assert stub.Echo(good_request()).message == "hello"
        assert breaker.state is BreakerState.CLOSED
        assert revived.calls["Echo"] == 1


def test_wait_for_ready_rides_out_a_restart_on_the_same_port(start_server: StartServer) -> None:
    server = start_server()
    target, port = server.target, server.port
    config = ClientConfig(wait_for_ready=True, max_reconnect_backoff_seconds=0.2)
    with ChimeraClient(config) as client:
        stub = client.stub(echo_pb2_grpc.EchoServiceStub, target)
        assert stub.Echo(good_request(), timeout=5).message == "hello"
        server.stop(0)
        revived = EchoServicer()
        # The server comes back 0.5 s after the call was made; the call waits for it.
        restart = threading.Timer(0.5, lambda: start_server(port=port, echo=revived))
        restart.start()
        try:
            assert stub.Echo(good_request(), timeout=10).message == "hello"
        finally:
            restart.join()
        assert revived.calls["Echo"] == 1
        assert client.breaker_for(target).stats.failures == 0
    # Without it (the default), a call to a port nobody serves fails at once.
    with ChimeraClient(ClientConfig(max_reconnect_backoff_seconds=0.2)) as client:
        stub = client.stub(echo_pb2_grpc.EchoServiceStub, f"127.0.0.1:{free_port()}")
        with pytest.raises(grpc.RpcError) as caught:
            stub.Echo(good_request(), timeout=5)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


# --- deadlines, retries, channels ------------------------------------------------------
def test_default_deadline_is_applied_unless_the_caller_sets_one(server: ChimeraServer) -> None:
    with ChimeraClient(ClientConfig(default_deadline_seconds=0.2)) as client:
        stub = client.stub(echo_pb2_grpc.EchoServiceStub, server.target)
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as caught:
            stub.Slow(echo_pb2.SlowRequest(sleep_ms=3000))
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 1.5
        assert stub.Slow(echo_pb2.SlowRequest(sleep_ms=300), timeout=5).message == "slow"


def test_idempotent_methods_are_retried_and_others_are_not(
    server: ChimeraServer, servicer: EchoServicer
) -> None:
    retry = RetryPolicy(max_attempts=3, initial_backoff_seconds=0.01, max_backoff_seconds=0.05)
    config = ClientConfig(idempotent_methods=(f"{SERVICE}/Fail",), retry=retry)
    with ChimeraClient(config) as client:
        stub = client.stub(echo_pb2_grpc.EchoServiceStub, server.target)
        reply = stub.Fail(echo_pb2.FailRequest(kind="flaky", times=2, key="a"))
        assert reply.message == "ok after 3"  # two UNAVAILABLE attempts, then success
        assert client.breaker_for(server.target).stats.failures == 0  # one logical call
    calls_before = servicer.calls["Fail"]
    with ChimeraClient() as client:
        stub = client.stub(echo_pb2_grpc.EchoServiceStub, server.target)
        with pytest.raises(grpc.RpcError) as caught:
            stub.Fail(echo_pb2.FailRequest(kind="flaky", times=2, key="b"))
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert servicer.calls["Fail"] == calls_before + 1


def test_service_config_lists_only_idempotent_methods() -> None:
    config = ClientConfig(idempotent_methods=("a.B/Get", "a.C"))
    (method_config,) = json.loads(config.service_config())["methodConfig"]
    assert method_config["name"] == [{"service": "a.B", "method": "Get"}, {"service": "a.C"}]
    policy = method_config["retryPolicy"]
    assert policy["maxAttempts"] == 3
    assert policy["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert json.loads(ClientConfig().service_config()) == {"methodConfig": []}
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=9)
    with pytest.raises(ValueError, match="retryable_codes"):
        RetryPolicy(retryable_codes=("NOPE",))
    with pytest.raises(ValueError, match="default_deadline_seconds"):
        ClientConfig(default_deadline_seconds=-1)


def test_one_channel_per_target_and_streams_pass_through(server: ChimeraServer) -> None:
    client = ChimeraClient()
    channel = client.channel_for(server.target)
    assert client.channel_for(server.target) is channel
    assert client.channel_for("127.0.0.1:1") is not channel
    stub = client.stub(echo_pb2_grpc.EchoServiceStub, server.target)
    assert [r.index for r in stub.Count(echo_pb2.CountRequest(count=3))] == [0, 1, 2]
    assert client.breaker_for(server.target).stats.successes == 1
    client.close()
    with pytest.raises(RuntimeError, match="closed"):
        client.channel_for(server.target)


# --- a failed call passed on by a handler -----------------------------------------
def test_upstream_error_keeps_the_failed_calls_status_and_an_open_breakers() -> None:
    with ChimeraClient(ClientConfig(breaker_failure_threshold=1)) as client:
        stub = client.stub(echo_pb2_grpc.EchoServiceStub, "127.0.0.1:1")  # nothing listens on port 1
        with pytest.raises(grpc.RpcError) as refused:
            stub.Echo(echo_pb2.EchoRequest(message="x"), timeout=5)
        error = UpstreamError.from_rpc(refused.value, "echo Echo")
        assert error.code == grpc.StatusCode.UNAVAILABLE
        assert error.message.startswith("echo Echo: UNAVAILABLE: ")
        with pytest.raises(CircuitOpenError) as open_breaker:  # one failure opened it
            stub.Echo(echo_pb2.EchoRequest(message="x"), timeout=5)
        error = UpstreamError.from_rpc(open_breaker.value, "echo Echo")
        assert (error.code, error.message) == (
            grpc.StatusCode.UNAVAILABLE, f"echo Echo: UNAVAILABLE: {open_breaker.value.details()}")
