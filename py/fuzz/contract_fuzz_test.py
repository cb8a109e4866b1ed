"""The contract fuzz test every layer gets from its template (``<name>_fuzz_test``).

Starts the layer's own server binary as a subprocess on loopback, fuzzes every
method of its service through reflection (seeded, a few seconds in all), then
checks that no reply was UNKNOWN or INTERNAL and that health still answers
SERVING. The template passes, in the environment:

  CHIMERA_FUZZ_SERVER   runfiles path of the layer's ``server`` binary
  CHIMERA_FUZZ_SERVICE  full name of the service, e.g. chimera.v1.PlanningService
  CHIMERA_FUZZ_ARGS     extra server flags (space-separated), optional
  CHIMERA_FUZZ_SEED     the seed (default 20261201)
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from chimera.framework.processes import ProcessStack, ServerProcess, ServerSpec, free_ports, runfile
from chimera.fuzz.harness import fuzz_service

SERVICE = os.environ.get("CHIMERA_FUZZ_SERVICE", "")
SEED = int(os.environ.get("CHIMERA_FUZZ_SEED", "20261201"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    binary = runfile(os.environ["CHIMERA_FUZZ_SERVER"])
    (port,) = free_ports(1)
    argv = (str(binary), "--port", str(port), "--metrics-port", "off", *shlex.split(os.environ.get("CHIMERA_FUZZ_ARGS", "")))
    with ProcessStack(Path(tmp_path_factory.mktemp("fuzz"))) as stack:
        (started,) = stack.start([ServerSpec(SERVICE, argv, port, SERVICE)])
        yield started


def test_every_reply_is_a_proper_status_and_health_stays_serving(server: ServerProcess) -> None:
    report = fuzz_service(server.target, SERVICE, seed=SEED)
    print(report.summary())
    assert report.methods, f"reflection lists no method of {SERVICE}"
    assert not report.crashes, "\n".join(
        f"{c.method}: {c.code} {c.details!r} for request:\n{c.request}" for c in report.crashes[:5]
    ) + f"\n(server log tail)\n{server.log_tail()}"
    with grpc.insecure_channel(server.target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=SERVICE), timeout=10
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
