"""Public repository rules of the Debian base layer (see tools/debian/README.md).

    load("//tools/debian:repositories.bzl", "deb_lock_repository")

    deb_lock_repository(name = "debian_base", lock = "//third_party/debian:base.lock.json")
"""

load("//tools/debian/private:deb_repository.bzl", _deb_lock_repository = "deb_lock_repository")

deb_lock_repository = _deb_lock_repository
