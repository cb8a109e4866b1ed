"""chimera_contract: one contract file's proto_library and its Python targets."""

load("//tools/proto:defs.bzl", "py_grpc_library", "py_proto_library")

def chimera_contract(name, deps, service = True):
    """Declares `<name>_proto`, `<name>_py_pb2` and, for a file with a service, `<name>_py_pb2_grpc`.

    Args:
      name: the .proto file's base name in this package (e.g. "execution").
      deps: proto_library targets the file imports.
      service: whether the file defines a gRPC service.
    """
    native.proto_library(
        name = name + "_proto",
        srcs = [name + ".proto"],
        strip_import_prefix = "/proto",
        deps = deps,
    )
    py_proto_library(
        name = name + "_py_pb2",
        deps = [":%s_proto" % name],
    )
    if service:
        py_grpc_library(
            name = name + "_py_pb2_grpc",
            srcs = [":%s_proto" % name],
            deps = [":%s_py_pb2" % name],
        )
