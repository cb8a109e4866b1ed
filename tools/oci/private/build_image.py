"""Writes an OCI image layout (image-spec 1.0) from a spec made by image.bzl.

Deterministic by construction: entries sorted by path, every mtime 0, owner 0:0 with
empty names, modes 0755 (directories, executables) or 0644, regular files only (the
runfiles' symlinks are followed), PAX format, gzip with no name and mtime 0, and the
epoch as every `created` time. Two layers: the third-party repositories (they change
rarely), then this workspace's files.

    build_image.py --spec S.json --status stable-status.txt --out DIR --digest FILE
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import stat
import sys
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
# A fixed time where the spec has one: the image must not depend on when it was built
# (and umoci's `stat` needs a time in every history entry).
EPOCH = "1970-01-01T00:00:00Z"
REVISION_KEY = "STABLE_GIT_COMMIT"
REVISION_LABEL = "org.opencontainers.image.revision"
TAG = "latest"


def _json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def _info(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def layer_tar(entries: list[tuple[str, str]]) -> bytes:
    """An uncompressed tar of (path in the image, file on disk), parents included."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        directories: set[str] = set()
        for dest, src in sorted(entries):
            parents = PurePosixPath(dest.lstrip("/")).parents
            for parent in reversed(list(parents)[:-1]):  # the last parent is "."
                if str(parent) not in directories:
                    directories.add(str(parent))
                    tar.addfile(_info(f"{parent}/", tarfile.DIRTYPE, 0o755))
            st = os.stat(src)  # follows symlinks: the image holds the content
            if not stat.S_ISREG(st.st_mode):
                raise ValueError(f"{src}: not a regular file (directories are not runfiles entries)")
            mode = 0o755 if st.st_mode & 0o111 else 0o644
            with open(src, "rb") as f:
                tar.addfile(_info(dest.lstrip("/"), tarfile.REGTYPE, mode, st.st_size), f)
    return buffer.getvalue()


def _gzip(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", fileobj=buffer, mode="wb", compresslevel=6, mtime=0) as gz:
        gz.write(data)
    return buffer.getvalue()


class Blobs:
    def __init__(self, root: Path) -> None:
        self.dir = root / "blobs" / "sha256"
        self.dir.mkdir(parents=True, exist_ok=True)

    def put(self, data: bytes, media_type: str) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        (self.dir / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}


def revision(status_file: Path) -> str:
    """STABLE_GIT_COMMIT from Bazel's stable status (--workspace_status_command), else "unknown"."""
    for line in status_file.read_text().splitlines():
        key, _, value = line.partition(" ")
        if key == REVISION_KEY and value.strip():
            return value.strip()
    return "unknown"


def build(spec: dict[str, Any], status_file: Path, out: Path) -> str:
    app_root = spec["app_root"]
    external = set(spec["external_prefixes"])
    groups: list[list[tuple[str, str]]] = [[], []]
    for rel, src in spec["entries"]:
        groups[0 if rel.split("/")[0] in external else 1].append((f"{app_root}/{rel}", src))
    out.mkdir(parents=True, exist_ok=True)
    blobs = Blobs(out)
    layers, diff_ids, history = [], [], []
    for comment, entries in zip(("third-party runfiles", "workspace runfiles"), groups):
        if not entries:
            continue
        tar = layer_tar(entries)
        diff_ids.append(f"sha256:{hashlib.sha256(tar).hexdigest()}")
        layers.append(blobs.put(_gzip(tar), MEDIA_LAYER))
        history.append({"created": EPOCH, "created_by": f"tools/oci: {comment} ({len(entries)} files)"})
    config = dict(spec["config"])
    config["Labels"] = {**config.get("Labels", {}), REVISION_LABEL: revision(status_file)}
    if not config.get("Cmd"):
        config.pop("Cmd", None)
    image_config = {
        "created": EPOCH,
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": blobs.put(_json(image_config), MEDIA_CONFIG),
        "layers": layers,
        "annotations": {k: v for k, v in config["Labels"].items() if k.startswith("org.opencontainers.")},
    }
    manifest_descriptor = blobs.put(_json(manifest), MEDIA_MANIFEST)
    manifest_descriptor["annotations"] = {"org.opencontainers.image.ref.name": TAG}
    (out / "index.json").write_bytes(_json({"schemaVersion": 2, "mediaType": MEDIA_INDEX,
                                            "manifests": [manifest_descriptor]}))
    (out / "oci-layout").write_bytes(_json({"imageLayoutVersion": "1.0.0"}))
    return manifest_descriptor["digest"]


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="build_image", description=__doc__.split("\n\n")[0])
    p.add_argument("--spec", type=Path, required=True)
    p.add_argument("--status", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--digest", type=Path, required=True)
    args = p.parse_args(argv)
    try:
        digest = build(json.loads(args.spec.read_text()), args.status, args.out)
    except (OSError, ValueError, KeyError) as err:
        print(f"build_image: {err}", file=sys.stderr)
        return 2
    args.digest.write_text(digest + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
