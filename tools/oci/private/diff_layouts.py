"""Says why two OCI layouts of one image differ: config fields, then each layer's files
whose content, mode or owner differ (tools/oci/check_digest.sh runs it).

    diff_layouts.py A B
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path
from typing import Any


def _blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.split(":")[1]).read_bytes()


def _image(layout: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    (descriptor,) = json.loads((layout / "index.json").read_text())["manifests"]
    manifest = json.loads(_blob(layout, descriptor["digest"]))
    return manifest, json.loads(_blob(layout, manifest["config"]["digest"]))


def _members(layout: Path, digest: str) -> dict[str, tuple[str, int, int, int]]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(_blob(layout, digest)))) as tar:
        return {
            m.name: (hashlib.sha256(tar.extractfile(m).read()).hexdigest() if m.isfile() else "", m.mode, m.uid, m.mtime)
            for m in tar.getmembers()
        }


def diff(a: Path, b: Path) -> list[str]:
    (ma, ca), (mb, cb) = _image(a), _image(b)
    lines = [f"config.{k}: {ca['config'].get(k)!r} vs {cb['config'].get(k)!r}"
             for k in sorted(set(ca["config"]) | set(cb["config"])) if ca["config"].get(k) != cb["config"].get(k)]
    for i, (la, lb) in enumerate(zip(ma["layers"], mb["layers"])):
        if la["digest"] == lb["digest"]:
            continue
        xa, xb = _members(a, la["digest"]), _members(b, lb["digest"])
        changed = sorted(n for n in set(xa) | set(xb) if xa.get(n) != xb.get(n))
        lines.append(f"layer {i}: {len(changed)} entries differ: " + ", ".join(changed[:15]))
    return lines


if __name__ == "__main__":
    for line in diff(Path(sys.argv[1]), Path(sys.argv[2])) or ["no difference"]:
        print(line)
