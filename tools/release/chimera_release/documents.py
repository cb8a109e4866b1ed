"""The release documents: the built manifest, the artifacts delta, the CycloneDX SBOM and their checks.

- digests of build outputs and of a binary's runfiles;
- `manifest`: every deliverable of a revision, built, with its outputs' digests;
- `artifacts`: affected deliverables built at both revisions, changed or byte-identical;
- `sbom`: a CycloneDX (JSON, 1.6) SBOM of a manifest, via cyclonedx-python-lib;
- `check`: a manifest against its JSON Schema and an SBOM against CycloneDX's.
"""

from __future__ import annotations

import email.parser
import hashlib
import json
import pathlib
import platform
import re
import subprocess
import tempfile
from typing import Any, Iterable
from urllib.parse import unquote, urlparse

import jsonschema
from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL

from chimera_release.errors import UsageError
from chimera_release.graph import Deliverable, SnapshotStore, between, deliverables, label_path
from chimera_release.workspace import Revision, normalize_project, parse_lock

# ---------------------------------------------------------------------------
# Digests of build outputs

def file_sha256(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def runfiles_digest(executable: pathlib.Path) -> dict[str, object] | None:
    """sha256 over (runfiles path, content sha256) of every runfile, or None without runfiles."""
    manifest = executable.with_name(executable.name + ".runfiles_manifest")
    if not manifest.is_file():
        return None
    entries = []
    for line in manifest.read_text().splitlines():
        relative, _, real = line.partition(" ")
        content = file_sha256(pathlib.Path(real)) if real and pathlib.Path(real).is_file() else "empty"
        entries.append(f"{relative} {content}")
    entries.sort()
    return {"files": len(entries), "sha256": hashlib.sha256("\n".join(entries).encode()).hexdigest()}


# ---------------------------------------------------------------------------
# The manifest

MANIFEST_SCHEMA = "chimera.release.manifest/v1"
LOCK_PATH = "third_party/python/requirements_lock.txt"
BOOTSTRAP_PATH = "tools/bootstrap.sh"
_IMAGE_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


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


def debian_packages(store: SnapshotStore, revision: Revision, path: str) -> dict[str, Any]:
    """One Debian lock of the revision: its digest and every package's name, version and .deb SHA-256."""
    text = store.repo.read(revision.tree, path)
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


def build_outputs(store: SnapshotStore, workspace: pathlib.Path, labels: list[str]) -> dict[str, dict[str, Any]]:
    if not labels:
        return {}
    with tempfile.TemporaryDirectory() as scratch:
        bep = pathlib.Path(scratch) / "bep.json"
        store.bazel.run(workspace, "build", f"--build_event_json_file={bep}", "--", *labels)
        return _bep_outputs(bep)


def _relative(path: str) -> str:
    marker = "/bazel-out/"
    return "bazel-out/" + path.split(marker, 1)[1] if marker in path else path


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


def workspace_for(store: SnapshotStore, revision: Revision) -> pathlib.Path:
    """The repository itself when it holds exactly that tree (its warm output base), else the export."""
    if revision.tree == store.repo.working_tree_hash():
        return store.repo.root
    return store.export(revision)


def manifest(store: SnapshotStore, revision: Revision, images_ran: dict[str, str] | None = None) -> dict[str, Any]:
    """With ``images_ran`` (ci/containers.sh's record), every image's digest must be the one that ran."""
    snapshot, _ = store.get(revision)
    found: list[Deliverable] = deliverables(snapshot)
    workspace = workspace_for(store, revision)
    built = build_outputs(store, workspace, [d.label for d in found])
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
    lock = store.repo.read(revision.tree, lock_file)
    bootstrap = (store.repo.read(revision.tree, BOOTSTRAP_PATH) or b"").decode(errors="replace")
    toolchains = [{"package": package, "pinned": pinned or None, "version": installed_version(package)}
                  for package, pinned in sorted(toolchain_packages(bootstrap).items())]
    return {
        "schema": MANIFEST_SCHEMA,
        "revision": revision.as_json(),
        "bazel": store.bazel.version(),
        "machine": {"system": platform.system(), "machine": platform.machine(), "python": platform.python_version()},
        "workspace": str(workspace),
        "lock": {"path": lock_file, "sha256": hashlib.sha256(lock).hexdigest() if lock is not None else None},
        "toolchains": toolchains,
        "debian": [debian_packages(store, revision, path) for path in debian_lock_paths(snapshot)],
        "deliverables": entries,
    }


# ---------------------------------------------------------------------------
# The artifacts delta

ARTIFACTS_SCHEMA = "chimera.release.artifacts/v1"


def _output_digests(store: SnapshotStore, revision: Revision, labels: list[str]) -> dict[str, dict[str, Any]]:
    """label -> {output path under bin/: sha256 (+ runfiles digest)} at one revision, built in the export."""
    workspace = store.export(revision)
    built = build_outputs(store, workspace, labels)
    result: dict[str, dict[str, Any]] = {}
    for label, outputs in built.items():
        files = {}
        for path in outputs["files"]:
            file = pathlib.Path(path)
            relative = path.split("/bin/", 1)[-1]
            files[relative] = {"sha256": file_sha256(file), "runfiles": runfiles_digest(file)}
        result[label] = files
    return result


def artifacts(store: SnapshotStore, base: Revision, head: Revision) -> dict[str, Any]:
    base_snapshot, head_snapshot, targets, _ = between(store, base, head)
    affected_labels = {t["label"] for t in targets}
    candidates = {d.label: d for d in deliverables(head_snapshot) + deliverables(base_snapshot)
                  if d.label in affected_labels}
    in_base = sorted(label for label in candidates if label in base_snapshot["targets"])
    in_head = sorted(label for label in candidates if label in head_snapshot["targets"])
    before = _output_digests(store, base, in_base)
    after = _output_digests(store, head, in_head)
    entries = []
    for label in sorted(candidates):
        old, new = before.get(label), after.get(label)
        if old is None:
            status = "new"
        elif new is None:
            status = "deleted"
        else:
            status = "identical" if old == new else "changed"
        changed_outputs = sorted(p for p in set(old or {}) | set(new or {}) if (old or {}).get(p) != (new or {}).get(p))
        entries.append({**candidates[label].as_json(), "status": status, "changed_outputs": changed_outputs,
                        "outputs": {p: d["sha256"] for p, d in sorted((new or old or {}).items())}})
    return {"schema": ARTIFACTS_SCHEMA, "base": base.as_json(), "head": head.as_json(), "artifacts": entries,
            "changed": sum(e["status"] != "identical" for e in entries),
            "identical": sum(e["status"] == "identical" for e in entries),
            # Deliverables no longer built at head: the manifest/SBOM delta drops them, deploy tears them down.
            "removed": [e["label"] for e in entries if e["status"] == "deleted"]}


# ---------------------------------------------------------------------------
# The SBOM

SBOM_SPEC_VERSION = "1.6"


def locate_site_packages(store: SnapshotStore) -> pathlib.Path | None:
    """The @pypi repository's site-packages in the workspace's output base, if fetched."""
    result = store.bazel.run(store.repo.root, "info", "output_base", check=False)
    if result.returncode != 0:
        return None
    candidate = pathlib.Path(result.stdout.decode().strip()) / "external" / "pypi" / "site-packages"
    return candidate if candidate.is_dir() else None


def _licences(metadata_dir: pathlib.Path | None) -> list[Any]:
    if metadata_dir is None:
        return []
    metadata_file = metadata_dir / "METADATA"
    if not metadata_file.is_file():
        return []
    message = email.parser.Parser().parsestr(metadata_file.read_text(errors="replace"), headersonly=True)
    expression = message.get("License-Expression")
    if expression:
        try:
            return [LicenseExpression(expression.strip())]
        except ValueError:
            pass
    classifiers = [c.rsplit("::", 1)[-1].strip() for c in message.get_all("Classifier") or []
                   if c.startswith("License ::")]
    if classifiers:
        return [DisjunctiveLicense(name=name) for name in sorted(set(classifiers))]
    text = (message.get("License") or "").strip()
    if text and len(text) <= 80 and "\n" not in text:
        return [DisjunctiveLicense(name=text)]
    return []


def dist_info_dirs(site_packages: pathlib.Path | None) -> dict[str, pathlib.Path]:
    """Normalized distribution name -> its .dist-info directory."""
    if site_packages is None or not site_packages.is_dir():
        return {}
    found = {}
    for entry in site_packages.glob("*.dist-info"):
        name = entry.name[: -len(".dist-info")].rsplit("-", 1)[0]
        found[normalize_project(name)] = entry
    return found


def _sha256_hashes(values: Iterable[str]) -> list[HashType]:
    return [HashType(alg=HashAlgorithm.SHA_256, content=v.split(":", 1)[1]) for v in values if v.startswith("sha256:")]


_COMPONENT_TYPES = {"service": ComponentType.APPLICATION, "image": ComponentType.CONTAINER}


def build_bom(manifest: dict[str, Any], lock_text: str, site_packages: pathlib.Path | None) -> Bom:
    bom = Bom()
    revision = manifest["revision"]
    bom.metadata.component = Component(
        name="chimera", version=revision.get("commit") or revision["tree"], type=ComponentType.APPLICATION,
        bom_ref="chimera", properties=[Property(name="chimera:tree", value=revision["tree"]),
                                       Property(name="chimera:clean", value=str(revision["clean"]).lower())])
    dist_info = dist_info_dirs(site_packages)
    for pin in sorted(parse_lock(lock_text).values(), key=lambda p: p.name):
        bom.components.add(Component(
            name=pin.name, version=pin.version, type=ComponentType.LIBRARY, bom_ref=f"pypi:{pin.name}",
            purl=PackageURL(type="pypi", name=pin.name, version=pin.version),
            hashes=_sha256_hashes(pin.hashes), licenses=_licences(dist_info.get(pin.name)),
            properties=[Property(name="chimera:source", value="third_party/python/requirements_lock.txt")]))
    for toolchain in manifest["toolchains"]:
        version = toolchain["version"] or "not-installed"
        bom.components.add(Component(
            name=toolchain["package"], version=version, type=ComponentType.APPLICATION,
            bom_ref=f"deb:{toolchain['package']}",
            purl=PackageURL(type="deb", namespace="debian", name=toolchain["package"], version=version),
            properties=[Property(name="chimera:role", value="toolchain")]))
    for lock in manifest.get("debian", []):  # the images' base layer (tools/debian)
        for package in lock["packages"]:
            bom.components.add(Component(
                name=package["name"], version=package["version"], type=ComponentType.LIBRARY,
                bom_ref=f"deb:base:{package['name']}",
                purl=PackageURL(type="deb", namespace="debian", name=package["name"], version=package["version"],
                                qualifiers={"arch": package["architecture"], "distro": "debian-12"}),
                hashes=[HashType(alg=HashAlgorithm.SHA_256, content=package["sha256"])],
                properties=[Property(name="chimera:source", value=lock["path"]),
                            Property(name="chimera:role", value="image base layer")]))
    for deliverable in manifest["deliverables"]:
        kind = _COMPONENT_TYPES.get(deliverable["kind"], ComponentType.LIBRARY)
        if deliverable["kind"] == "image":  # an image is known by its manifest digest
            hashes = [HashType(alg=HashAlgorithm.SHA_256, content=deliverable["image"]["digest"].split(":")[1])]
        else:
            hashes = [HashType(alg=HashAlgorithm.SHA_256, content=o["sha256"]) for o in deliverable["outputs"][:1]]
        bom.components.add(Component(
            name=deliverable["label"], version=revision.get("commit") or revision["tree"], type=kind,
            bom_ref=deliverable["label"], hashes=hashes,
            properties=[Property(name="chimera:kind", value=deliverable["kind"]),
                        Property(name="chimera:layer", value=deliverable["layer"]),
                        *[Property(name="chimera:output", value=f"{o['path']} sha256:{o['sha256']}")
                          for o in deliverable["outputs"]]]))
    bom.register_dependency(bom.metadata.component, list(bom.components))
    return bom


def render_bom(bom: Bom) -> str:
    return JsonV1Dot6(bom).output_as_string(indent=2)


# ---------------------------------------------------------------------------
# Checks

MANIFEST_SCHEMA_FILE = pathlib.Path(__file__).resolve().parent.parent / "schemas" / "manifest.schema.json"


def manifest_problems(document: Any) -> list[str]:
    schema = json.loads(MANIFEST_SCHEMA_FILE.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    return [f"manifest: {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))]


def sbom_problems(text: str) -> list[str]:
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    return [] if error is None else [f"sbom: {error}"]
