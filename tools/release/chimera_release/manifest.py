"""`manifest`: every deliverable of a revision, built, with its outputs' digests."""

from __future__ import annotations

import hashlib
import json
import pathlib
import platform
import re
import subprocess
import tempfile
from typing import Any
from urllib.parse import unquote, urlparse

from chimera_release.context import Context, describe
from chimera_release.deliverables import Deliverable, deliverables
from chimera_release.digests import file_sha256, runfiles_digest
from chimera_release.errors import UsageError
from chimera_release.gitrepo import Revision
from chimera_release.snapshot import label_path

SCHEMA = "chimera.release.manifest/v1"
LOCK_PATH = "third_party/python/requirements_lock.txt"
BOOTSTRAP_PATH = "tools/bootstrap.sh"


def lock_path(snapshot: dict[str, Any]) -> str:
    """The requirements lock a pip repository rule of WORKSPACE reads."""
    for view in snapshot["repositories"].values():
        label = view["attrs"].get("requirements_lock")
        if label:
            return label_path(label)
    return LOCK_PATH


def debian_lock_paths(snapshot: dict[str, Any]) -> list[str]:
    """The Debian locks (tools/debian) whose packages the images' base layer holds."""
    return sorted(label_path(view["attrs"]["lock"]) for view in snapshot["repositories"].values()
                  if view["class"] == "deb_lock_repository" and view["attrs"].get("lock"))


def debian_packages(context: Context, revision: Revision, path: str) -> dict[str, Any]:
    """One Debian lock of the revision: its digest and every package's name, version and .deb SHA-256."""
    text = context.repo.read(revision.tree, path)
    if text is None:
        raise UsageError(f"{path}: not in the tree of {revision.name}")
    lock = json.loads(text)
    return {"path": path, "sha256": hashlib.sha256(text).hexdigest(), "architecture": lock["architecture"],
            "packages": [{key: package[key] for key in ("name", "version", "architecture", "source", "sha256")}
                         for package in lock["packages"]]}


def read_images_ran(path: pathlib.Path) -> dict[str, str]:
    """``ci/containers.sh``'s record {image name: manifest digest it ran}."""
    try:
        ran = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UsageError(f"--images-ran {path}: {error}") from None
    if not isinstance(ran, dict) or not all(isinstance(v, str) and _IMAGE_DIGEST.fullmatch(v) for v in ran.values()):
        raise UsageError(f"--images-ran {path}: not an object of image name -> sha256:<hex>")
    return ran


def toolchain_packages(bootstrap: str) -> dict[str, str]:
    """Debian package -> pinned version ("" = any), from bootstrap.sh's PINNED table."""
    table = re.search(r"declare -A PINNED=\((.*?)\n\)", bootstrap, re.S)
    if table is None:
        return {}
    return dict(re.findall(r'\[([\w.+-]+)\]="([^"]*)"', table.group(1)))


def installed_version(package: str) -> str | None:
    result = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev} ${Version}", package],
                            capture_output=True, text=True)
    if result.returncode != 0 or not result.stdout.startswith("ii"):
        return None
    return result.stdout.split()[-1]


def _bep_outputs(bep_file: pathlib.Path) -> dict[str, dict[str, Any]]:
    """label -> {"configuration": mnemonic, "files": [paths]} from a BEP JSON file."""
    file_sets: dict[str, dict[str, Any]] = {}
    configurations: dict[str, str] = {}
    completed: dict[str, dict[str, Any]] = {}
    for line in bep_file.read_text().splitlines():
        event = json.loads(line)
        key = event.get("id", {})
        if "namedSet" in key:
            file_sets[key["namedSet"]["id"]] = event.get("namedSetOfFiles", {})
        elif "configuration" in key:
            configurations[key["configuration"]["id"]] = event.get("configuration", {}).get("mnemonic", "")
        elif "targetCompleted" in key and event.get("completed", {}).get("success", False):
            sets = [s["id"] for group in event["completed"].get("outputGroup", []) if group.get("name") == "default"
                    for s in group.get("fileSets", [])]
            completed[key["targetCompleted"]["label"]] = {
                "configuration": key["targetCompleted"].get("configuration", {}).get("id", ""), "sets": sets}

    def files_of(set_id: str, seen: set[str]) -> list[str]:
        if set_id in seen or set_id not in file_sets:
            return []
        seen.add(set_id)
        named = file_sets[set_id]
        paths = [unquote(urlparse(f["uri"]).path) for f in named.get("files", []) if f.get("uri", "").startswith("file:")]
        for nested in named.get("fileSets", []):
            paths.extend(files_of(nested["id"], seen))
        return paths

    result = {}
    for label, info in completed.items():
        seen: set[str] = set()
        files = sorted({p for s in info["sets"] for p in files_of(s, seen)})
        result[label] = {"configuration": configurations.get(info["configuration"], info["configuration"]),
                         "files": files}
    return result


def build(context: Context, workspace: pathlib.Path, labels: list[str]) -> dict[str, dict[str, Any]]:
    if not labels:
        return {}
    with tempfile.TemporaryDirectory() as scratch:
        bep = pathlib.Path(scratch) / "bep.json"
        context.store.bazel.run(workspace, "build", f"--build_event_json_file={bep}", "--", *labels)
        return _bep_outputs(bep)


def _relative(path: str) -> str:
    marker = "/bazel-out/"
    return "bazel-out/" + path.split(marker, 1)[1] if marker in path else path


_IMAGE_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def image_record(label: str, files: list[dict[str, Any]]) -> dict[str, Any]:
    """An oci_image's manifest digest (its `<name>.digest` output) and the layout's size.

    The digest must name a blob of the layout the build reported, so the manifest
    never lists a digest of some other image.
    """
    name = label.rsplit(":", 1)[-1]
    digest_files = [f for f in files if f["path"].endswith(f"/{name}.digest")]
    if len(digest_files) != 1:
        raise UsageError(f"{label}: expected one output {name}.digest, got {[f['path'] for f in files]}")
    digest = pathlib.Path(digest_files[0]["location"]).read_text().strip()
    blobs = {f"sha256:{f['sha256']}": f for f in files if f"/{name}/blobs/sha256/" in f["path"]}
    if not _IMAGE_DIGEST.fullmatch(digest) or digest not in blobs:
        raise UsageError(f"{label}: {name}.digest holds {digest!r}, not a manifest blob of its layout")
    return {"digest": digest, "blobs": len(blobs), "size": sum(f["size"] for f in blobs.values())}


def workspace_for(context: Context, revision: Revision) -> pathlib.Path:
    """The repository itself when it holds exactly that tree (its warm output base), else the export."""
    if revision.tree == context.repo.working_tree_hash():
        return context.repo.root
    return context.store.export(revision)


def manifest(context: Context, revision: Revision, images_ran: dict[str, str] | None = None) -> dict[str, Any]:
    """With ``images_ran`` (ci/containers.sh's record), every image's digest must be the one that ran."""
    snapshot, _ = context.store.get(revision)
    found: list[Deliverable] = deliverables(snapshot)
    workspace = workspace_for(context, revision)
    built = build(context, workspace, [d.label for d in found])
    entries = []
    for deliverable in found:
        outputs = built.get(deliverable.label)
        if outputs is None:
            raise UsageError(f"{deliverable.label} did not build at {revision.name}")
        files = []
        for path in outputs["files"]:
            file = pathlib.Path(path)
            record: dict[str, Any] = {"path": _relative(path), "location": path, "sha256": file_sha256(file),
                                      "size": file.stat().st_size}
            runfiles = runfiles_digest(file) if deliverable.kind == "service" else None
            if runfiles is not None:
                record["runfiles"] = runfiles
            files.append(record)
        entry = {**deliverable.as_json(), "configuration": outputs["configuration"], "outputs": files}
        if deliverable.kind == "image":
            entry["image"] = image_record(deliverable.label, files)
            if images_ran is not None:
                name = deliverable.label.rsplit(":", 1)[-1]
                if images_ran.get(name) != entry["image"]["digest"]:
                    raise UsageError(f"{deliverable.label}: built {entry['image']['digest']}, but the containers "
                                     f"ran {images_ran.get(name, 'no image of that name')}")
                entry["image"]["ran"] = True
        entries.append(entry)
    lock_file = lock_path(snapshot)
    lock = context.repo.read(revision.tree, lock_file)
    bootstrap = (context.repo.read(revision.tree, BOOTSTRAP_PATH) or b"").decode(errors="replace")
    toolchains = [{"package": package, "pinned": pinned or None, "version": installed_version(package)}
                  for package, pinned in sorted(toolchain_packages(bootstrap).items())]
    return {
        "schema": SCHEMA,
        "revision": describe(revision),
        "bazel": context.store.bazel.version(),
        "machine": {"system": platform.system(), "machine": platform.machine(), "python": platform.python_version()},
        "workspace": str(workspace),
        "lock": {"path": lock_file, "sha256": hashlib.sha256(lock).hexdigest() if lock is not None else None},
        "toolchains": toolchains,
        "debian": [debian_packages(context, revision, path) for path in debian_lock_paths(snapshot)],
        "deliverables": entries,
    }
