"""Public build rules of the Debian base layer (see tools/debian/README.md).

    load("//tools/debian:defs.bzl", "debian_layer")

    debian_layer(
        name = "base",
        debs = "@debian_base//:debs",
        lock = "@debian_base//:lock.json",
        require = ["/usr/bin/python3.11"],
    )
"""

load("//tools/debian/private:layer.bzl", _DebianLayerInfo = "DebianLayerInfo", _debian_layer = "debian_layer")

debian_layer = _debian_layer
DebianLayerInfo = _DebianLayerInfo
