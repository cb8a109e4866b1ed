"""Fixtures: real EchoService servers on loopback port 0, and clients for them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from echo_servicer import EchoServicer, StartServer, registration

from chimera.framework import ChimeraClient, ChimeraServer, MetricsRegistry, ServerConfig
from chimera.testing.v1 import echo_pb2_grpc


@pytest.fixture
def servicer() -> EchoServicer:
    return EchoServicer()


@pytest.fixture
def start_server(servicer: EchoServicer) -> Iterator[StartServer]:
    """Starts servers with ServerConfig overrides; all are stopped (grace 0) at teardown."""
    started: list[ChimeraServer] = []

    def start(
        *, metrics: MetricsRegistry | None = None, echo: EchoServicer | None = None, **overrides: Any
    ) -> ChimeraServer:
        config = ServerConfig(**{"grace_seconds": 0.0, **overrides})
        server = ChimeraServer(config, [registration(echo or servicer)], metrics=metrics)
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop(0)


@pytest.fixture
def server(start_server: StartServer) -> ChimeraServer:
    return start_server()


@pytest.fixture
def channel(server: ChimeraServer) -> Iterator[grpc.Channel]:
    """A plain grpc channel: no client-side policy, so server behaviour is what is seen."""
    with grpc.insecure_channel(server.target) as raw:
        yield raw


@pytest.fixture
def stub(channel: grpc.Channel) -> echo_pb2_grpc.EchoServiceStub:
    return echo_pb2_grpc.EchoServiceStub(channel)


@pytest.fixture
def client() -> Iterator[ChimeraClient]:
    with ChimeraClient() as owned:
        yield owned
