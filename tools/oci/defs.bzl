"""Public API of Chimera's OCI image rules.

    load("//tools/oci:defs.bzl", "oci_image")

    oci_image(
        name = "layer1_discovery",
        binary = "//layers/layer1_discovery:server",
        main = "layers/layer1_discovery/py/chimera/discovery/main.py",
        ports = [50051],
        layer = "layer1",
    )

builds `<name>/`, an OCI image layout (oci-layout, index.json, blobs/sha256/…; tag
`latest`) holding the binary's runfiles, and `<name>.digest` (the manifest digest),
with no Docker daemon and no network. See tools/oci/README.md for the image's shape,
its base and the labels.
"""

load("//tools/oci/private:image.bzl", _OciImageInfo = "OciImageInfo", _oci_image = "oci_image")

oci_image = _oci_image
OciImageInfo = _OciImageInfo
