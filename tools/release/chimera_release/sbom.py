"""`sbom`: a CycloneDX (JSON, 1.6) SBOM of a release manifest, via cyclonedx-python-lib."""

from __future__ import annotations

import email.parser
import pathlib
from typing import Any, Iterable

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from chimera_release import lockfile

SPEC_VERSION = "1.6"


def locate_site_packages(context: Any) -> pathlib.Path | None:
    """The @pypi repository's site-packages in the workspace's output base, if fetched."""
    result = context.store.bazel.run(context.repo.root, "info", "output_base", check=False)
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
        found[lockfile.normalize(name)] = entry
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
    for pin in sorted(lockfile.parse(lock_text).values(), key=lambda p: p.name):
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


def render(bom: Bom) -> str:
    return JsonV1Dot6(bom).output_as_string(indent=2)
