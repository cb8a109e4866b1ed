"""gRPC probes of a running layer: its services (server reflection) and their health."""

from __future__ import annotations

import dataclasses

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

INFRASTRUCTURE_PREFIXES = ("grpc.",)


@dataclasses.dataclass
class Probe:
    target: str
    services: list[str]
    status: dict[str, str]
    error: str | None = None

    @property
    def healthy(self) -> bool:
        return self.error is None and bool(self.status) and all(s == "SERVING" for s in self.status.values())


def list_services(channel: grpc.Channel, timeout: float) -> list[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    for reply in stub.ServerReflectionInfo(iter([request]), timeout=timeout):
        return sorted(s.name for s in reply.list_services_response.service
                      if not s.name.startswith(INFRASTRUCTURE_PREFIXES))
    return []


def check_health(channel: grpc.Channel, service: str, timeout: float) -> str:
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def probe(target: str, timeout: float = 2.0) -> Probe:
    """The layer's own services and the health status of each, or the error."""
    with grpc.insecure_channel(target) as channel:
        try:
            services = list_services(channel, timeout)
            return Probe(target, services, {s: check_health(channel, s, timeout) for s in services})
        except grpc.RpcError as error:
            code = error.code().name if isinstance(error, grpc.Call) else "UNKNOWN"
            return Probe(target, [], {}, error=f"{code}: {error.details() if isinstance(error, grpc.Call) else error}")
