"""Public entry points: the pinned Python toolchain and locked third-party packages."""

load("//tools/python/private:pip_repository.bzl", _pip_parse = "pip_parse")
load("//tools/python/private:python_repository.bzl", _python_register_toolchains = "python_register_toolchains")

pip_parse = _pip_parse
python_register_toolchains = _python_register_toolchains
