"""Writes an OCI image layout (image-spec 1.0) from a spec made by image.bzl.

Deterministic by construction: entries sorted by path, every mtime 0, owner 0:0 with
empty names (but the config's Volumes: empty directories owned by its User, the only
places the server can write), modes 0755 (directories, executables) or 0644, regular
files only (the runfiles' symlinks are followed), PAX format, gzip with no name and
mtime 0, and the epoch as every `created` time. Three layers: the Debian base
(tools/debian's debian_layer, built once and shared by every image; its interpreter
is the entrypoint's), the third-party repositories (they change rarely), then this
workspace's files and the volumes. Each
layer is streamed to disk (tar -> gzip -> file, hashed on the way), so a JAX server's
650 MB of wheels never sit in memory.

    build_image.py --spec S.json --status stable-status.txt --out DIR --digest FILE
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import stat
import sys
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from gzip_layer import write_gzip_layer

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
# A fixed time where the spec has one: the image must not depend on when it was built
# (and umoci's `stat` needs a time in every history entry).
EPOCH = "1970-01-01T00:00:00Z"
REVISION_KEY = "STABLE_GIT_COMMIT"
REVISION_LABEL = "org.opencontainers.image.revision"
TAG = "latest"


def _json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def _info(name: str, kind: bytes, mode: int, size: int = 0, owner: tuple[int, int] = (0, 0)) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = 0
    info.uid, info.gid = owner
    info.uname = info.gname = ""
    return info


def write_layer_tar(entries: list[tuple[str, str]], owned_dirs: list[str], owner: tuple[int, int],
                    out: BinaryIO) -> None:
    """An uncompressed tar of (path in the image, file on disk), parents included, to `out`.

    `owned_dirs` are empty directories owned by `owner` (the image's user): the only
    places the server may write to. The tar is streamed, so an image of JAX's wheels
    needs no more memory than one file's read buffer.
    """
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        directories: set[str] = set()

        def add_parents(path: PurePosixPath) -> None:
            for parent in reversed(list(path.parents)[:-1]):  # the last parent is "."
                if str(parent) not in directories:
                    directories.add(str(parent))
                    tar.addfile(_info(f"{parent}/", tarfile.DIRTYPE, 0o755))

        items = [(dest.lstrip("/"), src) for dest, src in entries]
        items += [(d.strip("/") + "/", None) for d in owned_dirs]
        for dest, src in sorted(items):
            add_parents(PurePosixPath(dest))
            if src is None:
                directories.add(dest.rstrip("/"))
                tar.addfile(_info(dest, tarfile.DIRTYPE, 0o755, owner=owner))
                continue
            st = os.stat(src)  # follows symlinks: the image holds the content
            if not stat.S_ISREG(st.st_mode):
                raise ValueError(f"{src}: not a regular file (directories are not runfiles entries)")
            mode = 0o755 if st.st_mode & 0o111 else 0o644
            with open(src, "rb") as f:
                tar.addfile(_info(dest, tarfile.REGTYPE, mode, st.st_size), f)


class Blobs:
    def __init__(self, root: Path) -> None:
        self.dir = root / "blobs" / "sha256"
        self.dir.mkdir(parents=True, exist_ok=True)

    def put(self, data: bytes, media_type: str) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        (self.dir / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    def put_layer(self, entries: list[tuple[str, str]], owned_dirs: list[str],
                  owner: tuple[int, int]) -> tuple[dict[str, Any], str]:
        """A gzip tar layer, streamed to disk: (its descriptor, the uncompressed tar's diff_id)."""
        partial = self.dir / ".layer.partial"
        descriptor, diff_id = write_gzip_layer(
            partial, lambda out: write_layer_tar(entries, owned_dirs, owner, out))
        partial.rename(self.dir / descriptor["digest"].removeprefix("sha256:"))
        return descriptor, diff_id

    def put_file(self, path: Path, descriptor: dict[str, Any]) -> None:
        """A blob built elsewhere (the base layer), checked against its descriptor."""
        data = path.read_bytes()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if digest != descriptor["digest"] or len(data) != descriptor["size"]:
            raise ValueError(f"{path}: {digest}, {len(data)} bytes; its descriptor says {descriptor['digest']}, {descriptor['size']}")
        (self.dir / digest.removeprefix("sha256:")).write_bytes(data)


def _owner(user: str) -> tuple[int, int]:
    """uid, gid of the config's numeric `User` ("65532:65532" or "65532")."""
    uid, _, gid = user.partition(":")
    if not (uid.isdigit() and (gid or uid).isdigit()):
        raise ValueError(f"User {user!r}: oci_image needs a numeric uid[:gid] (there is no /etc/passwd to resolve names)")
    return int(uid), int(gid or uid)


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
    # The writable directories (the config's Volumes) ride in the workspace layer.
    volumes = sorted(spec["config"].get("Volumes", {}))
    owner = _owner(spec["config"]["User"])
    out.mkdir(parents=True, exist_ok=True)
    blobs = Blobs(out)
    base = json.loads(Path(spec["base"]["info"]).read_text())
    if spec["interpreter"] not in base["paths"]:
        raise ValueError(f"the image's interpreter {spec['interpreter']} is not in the base layer ({spec['base']['history']})")
    blobs.put_file(Path(spec["base"]["blob"]), base["descriptor"])
    layers, diff_ids = [base["descriptor"]], [base["diff_id"]]
    history = [{"created": EPOCH, "created_by": f"tools/debian: {spec['base']['history']}"}]
    for comment, entries, owned in (("third-party runfiles", groups[0], []),
                                    ("workspace runfiles", groups[1], volumes)):
        if not entries and not owned:
            continue
        descriptor, diff_id = blobs.put_layer(entries, owned, owner)
        layers.append(descriptor)
        diff_ids.append(diff_id)
        suffix = f", writable {', '.join(owned)}" if owned else ""
        history.append({"created": EPOCH, "created_by": f"tools/oci: {comment} ({len(entries)} files{suffix})"})
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
