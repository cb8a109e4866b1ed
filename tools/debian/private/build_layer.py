"""The images' base layer: the locked .debs' files as one deterministic gzip tar layer.

    build_layer.py --lock lock.json --debs DIR --layer OUT.tar.gz --info OUT.json \
        --require /usr/bin/python3.11 [--user 65532:65532]

Each .deb (an ar archive) is checked against the lock's SHA-256 once more, then
its ``data.tar.*`` is merged into the layer as dpkg would unpack it, without
running maintainer scripts (the image configures nothing): documentation (but
each package's ``copyright``), manual pages and lintian overrides are left out.
What the scripts would have made is made here, as distroless does:

- ``/etc/ssl/certs/ca-certificates.crt``: every certificate of ca-certificates
  (update-ca-certificates' bundle);
- ``/etc/passwd`` and ``/etc/group`` with root, nobody and the image user
  (``nonroot``), its home directory, a world-writable ``/tmp``;
- ``/var/lib/dpkg/status.d/<package>``: each package's control file, where image
  scanners look for the installed Debian packages.

Deterministic: entries sorted by path (parents first), mtime 0, owners as the
.deb has them (root) with empty names, PAX format, gzip as in gzip_layer.py. Two
packages shipping one path with different content is an error. ``--info`` gets the
layer's descriptor and diff_id, its packages (name, version, SHA-256, source) and
every path in it; each ``--require`` path must be a file or a link to one in the
layer (the image's interpreter).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from gzip_layer import write_gzip_layer

#: Left out of the layer: no server reads them (copyright files stay).
OMITTED = ("usr/share/doc/", "usr/share/man/", "usr/share/info/", "usr/share/lintian/")
CA_DIR = "usr/share/ca-certificates/"
CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"
STATUS_DIR = "var/lib/dpkg/status.d/"


class LayerError(Exception):
    """A one-line reason the layer cannot be built."""


@dataclass
class Entry:
    info: tarfile.TarInfo
    data: bytes
    package: str


def ar_members(deb: bytes, name: str) -> Iterator[tuple[str, bytes]]:
    """(member name, bytes) of a .deb's ar archive."""
    if not deb.startswith(b"!<arch>\n"):
        raise LayerError(f"{name}: not a .deb (no ar header)")
    pos = 8
    while pos + 60 <= len(deb):
        header = deb[pos : pos + 60]
        member = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58])
        yield member, deb[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size % 2)


def member_tar(deb: bytes, package: str, prefix: str) -> tarfile.TarFile:
    for member, data in ar_members(deb, package):
        if member.startswith(prefix):
            if member.endswith(".zst"):
                raise LayerError(f"{package}: {member} is zstd-compressed, which Python's tarfile cannot read")
            return tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
    raise LayerError(f"{package}: the .deb has no {prefix}* member")


def _normalized(info: tarfile.TarInfo, name: str) -> tarfile.TarInfo:
    info.name = name
    info.mtime = 0
    info.uname = info.gname = ""
    info.pax_headers = {}
    return info


def _dir(name: str, mode: int = 0o755, owner: tuple[int, int] = (0, 0)) -> Entry:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    info.uid, info.gid = owner
    return Entry(_normalized(info, name), b"", "")


def _file(name: str, data: bytes, mode: int = 0o644) -> Entry:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    return Entry(_normalized(info, name), data, "")


class Layer:
    """The merged file tree: path (no leading /, no trailing /) -> entry."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}

    def add(self, entry: Entry) -> None:
        path = entry.info.name
        previous = self.entries.get(path)
        if previous is not None and not (previous.info.isdir() and entry.info.isdir()):
            same = (previous.info.type, previous.data, previous.info.linkname) == (
                entry.info.type, entry.data, entry.info.linkname)
            if not same:
                raise LayerError(f"{path}: shipped by both {previous.package} and {entry.package}, with different content")
        if previous is None or not previous.info.isdir():
            self.entries[path] = entry

    def unpack(self, package: str, deb: bytes) -> bytes:
        """Adds the package's files; returns its control file."""
        with member_tar(deb, package, "data.tar") as data:
            members = data.getmembers()
            by_name = {m.name: m for m in members}
            for member in members:
                path = member.name.removeprefix("./").rstrip("/")
                if not path or (path.startswith(OMITTED) and not path.endswith("/copyright")):
                    continue
                if member.islnk():  # a hard link: the layer holds the content at both paths
                    target = by_name.get(member.linkname) or by_name["./" + member.linkname.removeprefix("./")]
                    content = data.extractfile(target).read()
                    info = _normalized(tarfile.TarInfo(path), path)
                    info.mode, info.uid, info.gid, info.size = target.mode, target.uid, target.gid, len(content)
                    self.add(Entry(info, content, package))
                    continue
                if not (member.isdir() or member.isfile() or member.issym()):
                    raise LayerError(f"{package}: {member.name} is neither a file, a directory nor a link")
                content = data.extractfile(member).read() if member.isfile() else b""
                self.add(Entry(_normalized(member, path), content, package))
        with member_tar(deb, package, "control.tar") as control:
            for member in control.getmembers():
                if PurePosixPath(member.name).name == "control" and member.isfile():
                    return control.extractfile(member).read()
        raise LayerError(f"{package}: the .deb has no control file")

    def resolves_to_file(self, path: str) -> bool:
        """Whether `path` is a regular file, or a chain of links ending at one, in the layer."""
        for _ in range(16):
            entry = self.entries.get(path)
            if entry is None:
                return False
            if not entry.info.issym():
                return entry.info.isfile()
            link = entry.info.linkname
            path = str(PurePosixPath(link.lstrip("/")) if link.startswith("/") else PurePosixPath(path).parent / link)
        return False

    def write_tar(self, out: BinaryIO) -> None:
        paths = set(self.entries)
        for path in list(paths):  # every parent directory, root's 0755 unless a package has it
            for parent in PurePosixPath(path).parents:
                if str(parent) != "." and str(parent) not in self.entries:
                    self.entries[str(parent)] = _dir(str(parent))
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for entry in self.entries.values():
                entry.info.name = entry.info.name.rstrip("/") + ("/" if entry.info.isdir() else "")
            # Path order, each folder ("dir/") just before its first entry.
            for entry in sorted(self.entries.values(), key=lambda e: e.info.name):
                tar.addfile(entry.info, io.BytesIO(entry.data) if entry.info.isfile() else None)


def _owner(user: str) -> tuple[int, int]:
    uid, _, gid = user.partition(":")
    if not (uid.isdigit() and (gid or uid).isdigit()):
        raise LayerError(f"--user {user!r}: a numeric uid[:gid]")
    return int(uid), int(gid or uid)


def build(lock: dict[str, Any], debs: Path, layer_path: Path, require: list[str], user: str) -> dict[str, Any]:
    layer = Layer()
    packages = []
    for package in lock["packages"]:
        name = package["name"]
        deb = (debs / f"{name}.deb").read_bytes()
        digest = hashlib.sha256(deb).hexdigest()
        if digest != package["sha256"]:
            raise LayerError(f"Debian package {name} {package['version']}: the .deb has SHA-256 {digest}, the lock pins {package['sha256']}")
        control = layer.unpack(name, deb)
        layer.add(_file(STATUS_DIR + name, control))
        packages.append({key: package[key] for key in ("name", "version", "architecture", "source", "sha256", "url")})

    certificates = sorted(p for p, e in layer.entries.items() if p.startswith(CA_DIR) and p.endswith(".crt") and e.info.isfile())
    if any(p["name"] == "ca-certificates" for p in lock["packages"]):
        if not certificates:
            raise LayerError(f"ca-certificates ships no {CA_DIR}*.crt")
        layer.add(_file(CA_BUNDLE, b"".join(layer.entries[p].data.rstrip(b"\n") + b"\n" for p in certificates)))
    uid, gid = _owner(user)
    layer.add(_file("etc/passwd", (
        "root:x:0:0:root:/root:/sbin/nologin\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
        f"nonroot:x:{uid}:{gid}:nonroot:/home/nonroot:/sbin/nologin\n").encode()))
    layer.add(_file("etc/group", f"root:x:0:\nnobody:x:65534:\nnonroot:x:{gid}:\n".encode()))
    layer.add(_dir("home/nonroot", 0o700, (uid, gid)))
    layer.add(_dir("root", 0o700))
    layer.add(_dir("tmp", 0o1777))

    missing = [path for path in require if not layer.resolves_to_file(path.lstrip("/"))]
    if missing:
        raise LayerError(f"not a file in the layer: {', '.join(missing)} (which locked package should ship it?)")
    descriptor, diff_id = write_gzip_layer(layer_path, layer.write_tar)
    return {
        "descriptor": descriptor,
        "diff_id": diff_id,
        "packages": packages,
        "certificates": len(certificates),
        "paths": sorted("/" + p for p in layer.entries),
    }


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="build_layer", description=__doc__.splitlines()[0])
    p.add_argument("--lock", type=Path, required=True)
    p.add_argument("--debs", type=Path, required=True, help="directory of <package>.deb")
    p.add_argument("--layer", type=Path, required=True)
    p.add_argument("--info", type=Path, required=True)
    p.add_argument("--require", action="append", default=[], help="a path that must be a file in the layer")
    p.add_argument("--user", default="65532:65532")
    args = p.parse_args(argv)
    try:
        info = build(json.loads(args.lock.read_text()), args.debs, args.layer, args.require, args.user)
    except (OSError, KeyError, LayerError, tarfile.TarError) as exc:
        print(f"build_layer: {exc}", file=sys.stderr)
        return 2
    args.info.write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
