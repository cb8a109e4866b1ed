"""Sends fuzzed requests to every method of a running service, found by reflection.

Nothing is known about the service up front but its name: methods and
message types come from the server's reflection service, exactly as a
client tool sees them. Each reply is classified by status code; a fuzz run
fails when any reply is UNKNOWN or INTERNAL (a handler crashed, or a contract
let through what the handler cannot take), and when the service stops
answering health checks with SERVING afterwards.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from chimera.fuzz.generate import MessageFuzzer

__all__ = ["FIXED_CASES", "Crash", "FuzzReport", "fuzz_service"]

#: Requests that once crashed a handler, sent first when the method exists:
#: (method, field assignments as a protobuf JSON-like dict).
FIXED_CASES: tuple[tuple[str, dict[str, object]], ...] = (
    ("chimera.v1.DiscoveryService/GetAlerts", {"since": {"nanos": -1}}),
    ("chimera.v1.DiscoveryService/GetAlerts", {"since": {"nanos": 2_147_483_647}}),
)

_CRASH_CODES = frozenset({grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL})


@dataclass(frozen=True)
class Crash:
    """One reply that is not a proper status."""

    method: str
    code: str
    details: str
    request: str  # text format of the request, or "<garbage N bytes>"


@dataclass
class FuzzReport:
    """What a fuzz run sent and got back."""

    service: str
    methods: list[str] = field(default_factory=list)
    requests: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    crashes: list[Crash] = field(default_factory=list)

    def summary(self) -> str:
        codes = ", ".join(f"{code} {n}" for code, n in sorted(self.codes.items()))
        return f"{self.service}: {self.requests} requests to {len(self.methods)} methods ({codes})"


def _methods(channel: grpc.Channel, service: str) -> list[tuple[MethodDescriptor, type[Message], type[Message]]]:
    pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
    found = pool.FindServiceByName(service)
    return [
        (
            method,
            message_factory.GetMessageClass(method.input_type),
            message_factory.GetMessageClass(method.output_type),
        )
        for method in found.methods
    ]


def fuzz_service(
    target: str,
    service: str,
    *,
    seed: int,
    requests_per_method: int = 60,
    deadline_seconds: float = 2.0,
) -> FuzzReport:
    """Fuzzes every method of ``service`` at ``target`` with a fixed number of requests.

    The count, not a time budget, bounds the run, so a seed sends the same
    requests on a fast machine and on a loaded one.
    """
    report = FuzzReport(service)
    fuzzer = MessageFuzzer(seed)
    with grpc.insecure_channel(target) as channel:
        for method, request_type, response_type in _methods(channel, service):
            path = f"/{service}/{method.name}"
            report.methods.append(method.name)
            for request, text in _requests(fuzzer, f"{service}/{method.name}", request_type, requests_per_method):
                code, details = _call(channel, path, method, request, response_type, deadline_seconds)
                report.requests += 1
                report.codes[code.name] += 1
                if code in _CRASH_CODES:
                    report.crashes.append(Crash(method.name, code.name, details, text))
    return report


def _requests(
    fuzzer: MessageFuzzer,
    method: str,
    request_type: type[Message],
    count: int,
) -> Iterator[tuple[bytes, str]]:
    for fixed_method, fields in FIXED_CASES:
        if fixed_method == method:
            request = request_type()
            _assign(request, fields)
            yield request.SerializeToString(), str(request)
    for index in range(count):
        if index % 10 == 9:
            garbage = fuzzer.garbage()
            yield garbage, f"<garbage {len(garbage)} bytes>"
        else:
            request = fuzzer.message(request_type)
            yield request.SerializeToString(), str(request)[:2000]


def _assign(message: Message, fields: dict[str, object]) -> None:
    for name, value in fields.items():
        if isinstance(value, dict):
            _assign(getattr(message, name), value)
        else:
            setattr(message, name, value)


def _call(
    channel: grpc.Channel,
    path: str,
    method: MethodDescriptor,
    request: bytes,
    response_type: type[Message],
    deadline: float,
) -> tuple[grpc.StatusCode, str]:
    """Sends raw request bytes; the reply's status code and details."""
    identity = lambda data: data  # noqa: E731 - requests go out as the bytes made above
    try:
        if method.client_streaming:
            requests = iter([request, request])
            if method.server_streaming:
                call = channel.stream_stream(path, request_serializer=identity, response_deserializer=response_type.FromString)
                for _ in call(requests, timeout=deadline):
                    pass
            else:
                channel.stream_unary(path, request_serializer=identity, response_deserializer=response_type.FromString)(requests, timeout=deadline)
        elif method.server_streaming:
            call = channel.unary_stream(path, request_serializer=identity, response_deserializer=response_type.FromString)
            responses = call(request, timeout=deadline)
            for count, _ in enumerate(responses):
                if count >= 3:  # a live subscription: three messages show it works
                    responses.cancel()
                    break
        else:
            channel.unary_unary(path, request_serializer=identity, response_deserializer=response_type.FromString)(request, timeout=deadline)
    except grpc.RpcError as error:
        code = error.code()  # type: ignore[attr-defined]
        if code == grpc.StatusCode.CANCELLED:
            return grpc.StatusCode.OK, ""
        return code, error.details() or ""  # type: ignore[attr-defined]
    return grpc.StatusCode.OK, ""
