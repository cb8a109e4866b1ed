"""A real gRPC server on a loopback port, called by a real client."""

from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from chimera.testing.greeter.v1 import greeter_pb2, greeter_pb2_grpc


class Greeter(greeter_pb2_grpc.GreeterServicer):
    def SayHello(self, request: greeter_pb2.HelloRequest, context: grpc.ServicerContext) -> greeter_pb2.HelloReply:
        reply = greeter_pb2.HelloReply(message=f"Hello, {request.name}!")
        reply.answered_at.GetCurrentTime()
        return reply


@pytest.fixture
def target() -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    greeter_pb2_grpc.add_GreeterServicer_to_server(Greeter(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(grace=None)


def test_say_hello_over_loopback(target: str) -> None:
    with grpc.insecure_channel(target) as channel:
        reply = greeter_pb2_grpc.GreeterStub(channel).SayHello(greeter_pb2.HelloRequest(name="Chimera"), timeout=5)
    assert reply.message == "Hello, Chimera!"
    assert reply.answered_at.seconds > 0


def test_generated_module_path() -> None:
    assert greeter_pb2.DESCRIPTOR.name == "chimera/testing/greeter/v1/greeter.proto"
    assert greeter_pb2.__name__ == "chimera.testing.greeter.v1.greeter_pb2"
