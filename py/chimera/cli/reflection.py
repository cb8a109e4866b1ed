"""Finds a method's request and response types through the server's reflection service.

The CLI knows no .proto files: it asks the server (grpc.reflection.v1alpha)
for the file that defines the service, builds the message classes from those
descriptors, and can therefore call any method of any Chimera service.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import Message
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

__all__ = ["MethodNotFound", "ReflectedMethod", "ServiceCatalog", "split_method"]


class MethodNotFound(LookupError):
    """The server does not offer the named service or method."""


@dataclass(frozen=True)
class ReflectedMethod:
    path: str  # "/pkg.Service/Method", as on the wire
    request_type: type[Message]
    response_type: type[Message]
    client_streaming: bool
    server_streaming: bool


def split_method(text: str) -> tuple[str, str]:
    """Accepts "pkg.Service/Method", "/pkg.Service/Method" or "pkg.Service.Method"."""
    name = text.strip().lstrip("/")
    if "/" in name:
        service, _, method = name.partition("/")
    else:
        service, _, method = name.rpartition(".")
    if not service or not method or "/" in method:
        raise ValueError(f"method must look like package.Service/Method (got {text!r})")
    return service, method


class ServiceCatalog:
    """Reflection-backed lookups on one channel."""

    def __init__(self, channel: grpc.Channel) -> None:
        self._database = ProtoReflectionDescriptorDatabase(channel)
        self._pool = descriptor_pool.DescriptorPool(self._database)

    def services(self) -> list[str]:
        return sorted(self._database.get_services())

    def method(self, text: str) -> ReflectedMethod:
        service_name, method_name = split_method(text)
        try:
            service = self._pool.FindServiceByName(service_name)
        except KeyError:
            raise MethodNotFound(f"the server has no service {service_name!r}") from None
        method = service.methods_by_name.get(method_name)
        if method is None:
            known = ", ".join(sorted(service.methods_by_name))
            raise MethodNotFound(
                f"service {service_name!r} has no method {method_name!r} (has: {known})"
            )
        return ReflectedMethod(
            path=f"/{service.full_name}/{method.name}",
            request_type=message_factory.GetMessageClass(method.input_type),
            response_type=message_factory.GetMessageClass(method.output_type),
            client_streaming=method.client_streaming,
            server_streaming=method.server_streaming,
        )
