"""One deterministic gzip tar layer blob, streamed to disk and hashed on the way.

Shared by the image builder (build_image.py) and the Debian base layer
(tools/debian/private/build_layer.py): the tar is written through two hashing
sinks (the uncompressed tar's SHA-256 is the layer's ``diff_id``, the compressed
one's its blob digest), so a layer of hundreds of MB needs no more memory than a
read buffer. gzip gets no file name and mtime 0.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


class Digesting:
    """A write-only file that hashes and counts what passes through to `sink`."""

    def __init__(self, sink: BinaryIO) -> None:
        self.sink = sink
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.sink.write(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self.sink.flush()


def write_gzip_layer(path: Path, write_tar: Callable[[BinaryIO], None]) -> tuple[dict[str, Any], str]:
    """Writes `write_tar`'s tar, gzipped, to `path`: (the blob's OCI descriptor, the tar's diff_id)."""
    with path.open("wb") as sink:
        compressed = Digesting(sink)
        with gzip.GzipFile(filename="", fileobj=compressed, mode="wb", compresslevel=6, mtime=0) as gz:
            uncompressed = Digesting(gz)
            write_tar(uncompressed)
    descriptor = {"mediaType": MEDIA_LAYER, "digest": f"sha256:{compressed.sha256.hexdigest()}", "size": compressed.size}
    return descriptor, f"sha256:{uncompressed.sha256.hexdigest()}"
