"""Public entry point: protoc and the well-known protos from Debian's packages."""

load("//tools/proto/private:protobuf_repository.bzl", _protobuf_system_repository = "protobuf_system_repository")

protobuf_system_repository = _protobuf_system_repository
