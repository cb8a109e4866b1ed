"""Re-locks the base layer's Debian packages: roots -> runtime closure -> lock file.

    python3 tools/debian/lock.py third_party/debian/base.in third_party/debian/base.lock.json

Reads the roots (one package a line; ``!name`` excludes a package from the
closure), fetches each suite's signed ``InRelease`` (verified with ``gpgv``
against Debian's archive keyring) and its ``Packages.xz`` (checked against the
SHA-256 that ``InRelease`` lists), resolves the roots' ``Pre-Depends`` and
``Depends`` transitively (the first alternative that is not excluded; a
dependency with an excluded alternative is left out), and writes every
package's version, pool URL, size and SHA-256 from the index. Nothing is
installed and no ``.deb`` is downloaded: ``@debian_base`` (tools/debian) fetches
them, each checked against this file. Exit status 2 with one message line on a
bad roots file, an unverifiable index, or a package the index does not have.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import re
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

MIRROR = "http://deb.debian.org"
ARCH = "amd64"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
#: (archive, suite): a package in several suites is taken at its highest version
#: (a point release can overtake an older security update).
SUITES = (
    ("debian-security", "bookworm-security"),
    ("debian", "bookworm-updates"),
    ("debian", "bookworm"),
)
COMPONENT = "main"


class LockError(Exception):
    """A one-line reason the lock cannot be written."""


@dataclass(frozen=True)
class Roots:
    wanted: tuple[str, ...]
    excluded: frozenset[str]


def read_roots(path: Path) -> Roots:
    wanted, excluded = [], set()
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name = line.removeprefix("!")
        if not re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", name):
            raise LockError(f"{path}:{number}: {line!r} is not a Debian package name")
        (excluded.add(name) if line.startswith("!") else wanted.append(name))
    if not wanted:
        raise LockError(f"{path}: no packages")
    both = excluded.intersection(wanted)
    if both:
        raise LockError(f"{path}: both wanted and excluded: {', '.join(sorted(both))}")
    return Roots(tuple(wanted), frozenset(excluded))


def fetch(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.read()
    except OSError as exc:
        raise LockError(f"fetching {url}: {exc}") from None


def verified_index(archive: str, suite: str) -> tuple[str, bytes]:
    """(Packages.xz URL, its decompressed text), checked through the signed InRelease."""
    base = f"{MIRROR}/{archive}/dists/{suite}"
    inrelease = fetch(f"{base}/InRelease")
    with tempfile.NamedTemporaryFile(suffix=".InRelease") as signed:
        signed.write(inrelease)
        signed.flush()
        check = subprocess.run(
            ["gpgv", "--keyring", KEYRING, signed.name], capture_output=True, text=True
        )
    if check.returncode != 0:
        raise LockError(f"{base}/InRelease: signature not verified by {KEYRING} (gpgv, Debian's debian-archive-keyring)")
    member = f"{COMPONENT}/binary-{ARCH}/Packages.xz"
    listed = re.search(rf"^ ([0-9a-f]{{64}})\s+\d+\s+{re.escape(member)}$", inrelease.decode(), re.M)
    if listed is None:
        raise LockError(f"{base}/InRelease lists no SHA-256 for {member}")
    data = fetch(f"{base}/{member}")
    if hashlib.sha256(data).hexdigest() != listed.group(1):
        raise LockError(f"{base}/{member}: SHA-256 differs from the one InRelease lists")
    return f"{base}/{member}", lzma.decompress(data)


def _order(char: str) -> int:
    """dpkg's ordering of one non-digit character: ~ before the end, letters before the rest."""
    if char == "~":
        return -1
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _compare_part(a: str, b: str) -> int:
    """dpkg's comparison of an upstream version or a revision (alternating non-digit / digit runs)."""
    while a or b:
        a_text = re.match(r"[^0-9]*", a).group()
        b_text = re.match(r"[^0-9]*", b).group()
        a, b = a[len(a_text) :], b[len(b_text) :]
        for i in range(max(len(a_text), len(b_text))):
            x = _order(a_text[i]) if i < len(a_text) else 0
            y = _order(b_text[i]) if i < len(b_text) else 0
            if x != y:
                return -1 if x < y else 1
        a_num = re.match(r"[0-9]*", a).group()
        b_num = re.match(r"[0-9]*", b).group()
        a, b = a[len(a_num) :], b[len(b_num) :]
        if int(a_num or 0) != int(b_num or 0):
            return -1 if int(a_num or 0) < int(b_num or 0) else 1
    return 0


def version_key(version: str) -> tuple[int, str, str]:
    epoch, _, rest = version.rpartition(":")
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "0")
    return int(epoch or 0), upstream, revision


def newer(a: str, b: str) -> bool:
    """Whether Debian version ``a`` sorts after ``b`` (dpkg --compare-versions a gt b)."""
    (ea, ua, ra), (eb, ub, rb) = version_key(a), version_key(b)
    if ea != eb:
        return ea > eb
    return (_compare_part(ua, ub) or _compare_part(ra, rb)) > 0


def parse_packages(text: bytes) -> dict[str, dict[str, str]]:
    """Package name -> its stanza's fields (the highest version of a name wins)."""
    packages: dict[str, dict[str, str]] = {}
    for stanza in text.decode().split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t"):
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        name = fields.get("Package")
        if name and (name not in packages or newer(fields["Version"], packages[name]["Version"])):
            packages[name] = fields
    return packages


def dependencies(fields: dict[str, str]) -> list[list[str]]:
    """Pre-Depends then Depends: each a list of alternative package names."""
    groups = []
    for key in ("Pre-Depends", "Depends"):
        for clause in filter(None, (c.strip() for c in fields.get(key, "").split(","))):
            groups.append([re.split(r"[\s:(]", alt.strip(), 1)[0] for alt in clause.split("|")])
    return groups


def resolve(roots: Roots, index: dict[str, tuple[str, dict[str, str]]]) -> dict[str, dict[str, object]]:
    locked: dict[str, dict[str, object]] = {}
    queue = list(roots.wanted)
    while queue:
        name = queue.pop(0)
        if name in locked:
            continue
        if name not in index:
            raise LockError(f"package {name} is in no suite of {', '.join(s for _, s in SUITES)} ({ARCH})")
        suite, fields = index[name]
        needs = []
        for alternatives in dependencies(fields):
            if any(alt in roots.excluded for alt in alternatives):
                continue
            chosen = next((alt for alt in alternatives if alt in index), None)
            if chosen is None:
                raise LockError(f"{name}: no alternative of {' | '.join(alternatives)} is in the index")
            needs.append(chosen)
            queue.append(chosen)
        archive = next(a for a, s in SUITES if s == suite)
        locked[name] = {
            "name": name,
            "version": fields["Version"],
            "architecture": fields["Architecture"],
            "source": fields.get("Source", name).split(" ")[0],
            "suite": suite,
            "url": f"{MIRROR}/{archive}/{fields['Filename']}",
            "sha256": fields["SHA256"],
            "size": int(fields["Size"]),
            "depends": sorted(set(needs)),
        }
    return locked


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="lock", description=__doc__.splitlines()[0])
    p.add_argument("roots", type=Path, help="the roots file (base.in)")
    p.add_argument("lock", type=Path, help="the lock file to write (base.lock.json)")
    args = p.parse_args(argv)
    try:
        roots = read_roots(args.roots)
        index: dict[str, tuple[str, dict[str, str]]] = {}
        indexes = []
        for archive, suite in SUITES:
            url, text = verified_index(archive, suite)
            indexes.append({"suite": suite, "index": url, "sha256": hashlib.sha256(text).hexdigest()})
            for name, fields in parse_packages(text).items():
                if fields.get("Architecture") not in (ARCH, "all"):
                    continue
                if name not in index or newer(fields["Version"], index[name][1]["Version"]):
                    index[name] = (suite, fields)
        locked = resolve(roots, index)
    except (OSError, LockError) as exc:
        print(f"lock: {exc}", file=sys.stderr)
        return 2
    document = {
        "comment": "Generated by tools/debian/lock.sh from base.in; do not edit.",
        "architecture": ARCH,
        "roots": list(roots.wanted),
        "excluded": sorted(roots.excluded),
        "indexes": indexes,
        "packages": [locked[name] for name in sorted(locked)],
    }
    args.lock.write_text(json.dumps(document, indent=2) + "\n")
    total = sum(int(p["size"]) for p in locked.values())
    print(f"lock: {len(locked)} packages, {total / 1e6:.1f} MB of .debs -> {args.lock}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
