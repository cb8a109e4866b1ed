"""Public API of Chimera's proto rules.

    proto_library(name = "x_proto", srcs = ["x.proto"], strip_import_prefix = "/proto")  # native
    py_proto_library(name = "x_py_pb2", deps = [":x_proto"])
    py_grpc_library(name = "x_py_pb2_grpc", srcs = [":x_proto"], deps = [":x_py_pb2"])

proto_library is Bazel's native rule, compiled by Debian's protoc
(@com_google_protobuf//:protoc via --proto_compiler). Python code is generated
by grpcio-tools from the lock, as build actions. Well-known types are
`@com_google_protobuf//:<name>_proto` and import from the protobuf runtime.
"""

load("//tools/proto/private:py_proto.bzl", _PyProtoInfo = "PyProtoInfo", _py_grpc_library = "py_grpc_library", _py_proto_library = "py_proto_library")

PyProtoInfo = _PyProtoInfo
py_grpc_library = _py_grpc_library
py_proto_library = _py_proto_library
