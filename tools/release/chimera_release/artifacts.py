"""`artifacts`: affected deliverables built at both revisions, changed or byte-identical."""

from __future__ import annotations

import pathlib
from typing import Any

from chimera_release import affected as affected_lib
from chimera_release.context import Context, describe
from chimera_release.deliverables import deliverables
from chimera_release.digests import file_sha256, runfiles_digest
from chimera_release.gitrepo import Revision
from chimera_release.manifest import build

SCHEMA = "chimera.release.artifacts/v1"


def _digests(context: Context, revision: Revision, labels: list[str]) -> dict[str, dict[str, Any]]:
    """label -> {output path under bin/: sha256 (+ runfiles digest)} at one revision, built in the export."""
    workspace = context.store.export(revision)
    built = build(context, workspace, labels)
    result: dict[str, dict[str, Any]] = {}
    for label, outputs in built.items():
        files = {}
        for path in outputs["files"]:
            file = pathlib.Path(path)
            relative = path.split("/bin/", 1)[-1]
            files[relative] = {"sha256": file_sha256(file), "runfiles": runfiles_digest(file)}
        result[label] = files
    return result


def artifacts(context: Context, base: Revision, head: Revision) -> dict[str, Any]:
    base_snapshot, head_snapshot, targets, _ = affected_lib.between(context.store, base, head)
    affected_labels = {t["label"] for t in targets}
    candidates = {d.label: d for d in deliverables(head_snapshot) + deliverables(base_snapshot)
                  if d.label in affected_labels}
    in_base = sorted(label for label in candidates if label in base_snapshot["targets"])
    in_head = sorted(label for label in candidates if label in head_snapshot["targets"])
    before = _digests(context, base, in_base)
    after = _digests(context, head, in_head)
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
    return {"schema": SCHEMA, "base": describe(base), "head": describe(head), "artifacts": entries,
            "changed": sum(e["status"] != "identical" for e in entries),
            "identical": sum(e["status"] == "identical" for e in entries),
            # Deliverables no longer built at head: the manifest/SBOM delta drops them, deploy tears them down.
            "removed": [e["label"] for e in entries if e["status"] == "deleted"]}
