"""``python -m chimera.cli``: talk to any Chimera service from a shell.

  health --target HOST:PORT [--service NAME]   status JSON; exit 0 only when SERVING
  list   --target HOST:PORT                    the services the server offers
  call   --target HOST:PORT --method pkg.Service/Method [--json '{...}' | --json @file]
                                               request from JSON, response as JSON
                                               (streams: one JSON object per line)

Exit codes: 0 success; 1 the RPC failed (prints the gRPC code and details) or
the service is not SERVING; 2 bad usage (arguments, JSON, unknown method).
Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn, TextIO

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from chimera.cli.reflection import MethodNotFound, ServiceCatalog
from chimera.framework.client import ChimeraClient, ClientConfig

__all__ = ["main"]

EXIT_OK = 0
EXIT_RPC = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad arguments or input: exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="chimera", description="Call Chimera gRPC services.")
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="deadline per RPC in seconds (default 10)"
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    health = commands.add_parser("health", help="check a server's (or one service's) health")
    health.add_argument("--target", required=True, help="host:port")
    health.add_argument("--service", default="", help="service name; empty = whole server")

    listing = commands.add_parser("list", help="list the services a server offers")
    listing.add_argument("--target", required=True, help="host:port")

    call = commands.add_parser("call", help="call a method with a JSON request")
    call.add_argument("--target", required=True, help="host:port")
    call.add_argument("--method", required=True, help="package.Service/Method")
    call.add_argument("--json", default="{}", help="request as JSON, or @FILE to read it")
    return parser


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None) -> int:
    out = stdout if stdout is not None else sys.stdout
    try:
        args = build_parser().parse_args(argv)
        if not args.timeout > 0:
            raise UsageError(f"--timeout must be > 0 (got {args.timeout})")
        config = ClientConfig(
            default_deadline_seconds=args.timeout, default_stream_deadline_seconds=args.timeout
        )
        with ChimeraClient(config) as client:
            channel = client.channel_for(args.target)
            if args.command == "health":
                return _health(channel, args.service, out)
            if args.command == "list":
                return _list(channel, out)
            return _call(channel, args.method, args.json, out)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except UsageError as exc:
        return _fail(EXIT_USAGE, f"error: {exc}")
    except grpc.RpcError as exc:
        return _fail(EXIT_RPC, f"rpc failed: {_rpc_error_text(exc)}")
    except KeyboardInterrupt:
        return _fail(130, "interrupted")
    except Exception as exc:  # noqa: BLE001 - a CLI reports, it never dumps a traceback
        return _fail(EXIT_RPC, f"error: {type(exc).__name__}: {exc}")


def _health(channel: grpc.Channel, service: str, out: TextIO) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service))
    except grpc.RpcError as exc:
        if not (isinstance(exc, grpc.Call) and exc.code() == grpc.StatusCode.NOT_FOUND):
            raise
        reply = health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVICE_UNKNOWN)
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(json.dumps({"service": service, "status": status}), file=out)
    return EXIT_OK if reply.status == health_pb2.HealthCheckResponse.SERVING else EXIT_RPC


def _list(channel: grpc.Channel, out: TextIO) -> int:
    for name in ServiceCatalog(channel).services():
        print(name, file=out)
    return EXIT_OK


def _call(channel: grpc.Channel, method_text: str, json_text: str, out: TextIO) -> int:
    try:
        method = ServiceCatalog(channel).method(method_text)
    except (ValueError, MethodNotFound) as exc:
        raise UsageError(str(exc)) from None
    if method.client_streaming:
        raise UsageError(f"{method.path} takes a request stream; `call` sends one request")
    request = _parse_request(json_text, method.request_type)
    serialize = method.request_type.SerializeToString
    deserialize = method.response_type.FromString
    if method.server_streaming:
        stream = channel.unary_stream(
            method.path, request_serializer=serialize, response_deserializer=deserialize
        )
        for reply in stream(request):
            print(_to_json(reply, indent=None), file=out, flush=True)
        return EXIT_OK
    unary = channel.unary_unary(
        method.path, request_serializer=serialize, response_deserializer=deserialize
    )
    print(_to_json(unary(request), indent=2), file=out)
    return EXIT_OK


def _parse_request(json_text: str, request_type: type[Message]) -> Message:
    if json_text.startswith("@"):
        try:
            json_text = Path(json_text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read {json_text[1:]}: {exc.strerror}") from None
    request = request_type()
    try:
        json_format.Parse(json_text, request)
    except json_format.ParseError as exc:
        name = request_type.DESCRIPTOR.full_name
        first_line = str(exc).splitlines()[0] if str(exc) else "invalid"
        raise UsageError(f"bad JSON for {name}: {first_line}") from None
    return request


def _to_json(message: Message, indent: int | None) -> str:
    return json_format.MessageToJson(message, preserving_proto_field_name=True, indent=indent)


def _rpc_error_text(error: grpc.RpcError) -> str:
    if isinstance(error, grpc.Call):
        return f"{error.code().name}: {error.details()}"
    return str(error)


def _fail(code: int, message: str) -> int:
    print(message.replace("\n", " "), file=sys.stderr)
    return code
