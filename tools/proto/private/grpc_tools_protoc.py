"""Runs grpcio-tools' bundled protoc and gRPC Python plugin as a build action.

Generating with the grpcio-tools from the lock keeps generated code and the
protobuf/grpcio runtimes from the same lock in step (no version skew).
"""

import sys

from grpc_tools import protoc


def main() -> int:
    return protoc.main(["grpc_tools.protoc", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
