"""`release <command>`: the release tool's command line (exit 2 on bad input)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Callable, Sequence

from chimera_release import affected as affected_lib
from chimera_release.context import Context, add_common_arguments, describe
from chimera_release.errors import UsageError
from chimera_release.output import emit

Command = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: one line, exit 2
        raise UsageError(message)


def cmd_affected(args: argparse.Namespace) -> int:
    context = Context.from_args(args)
    base_revision = context.repo.resolve(args.base)
    head_revision = context.head(args.head)
    started = time.monotonic()
    base, base_cached = context.store.get(base_revision)
    head, head_cached = context.store.get(head_revision)
    targets = affected_lib.affected(base, head)
    timing = {"seconds": round(time.monotonic() - started, 3), "base_cached": base_cached, "head_cached": head_cached}
    if args.explain:
        matches = [t for t in targets if t["label"] == args.explain]
        if args.explain not in head["targets"] and args.explain not in base["targets"]:
            raise UsageError(f"--explain {args.explain}: no such target at either revision")
        document = {"schema": "chimera.release.explain/v1", "label": args.explain,
                    "affected": bool(matches), "reasons": matches[0]["reasons"] if matches else [],
                    "chain": matches[0]["chain"] if matches else []}
        rows = [[i, line] for i, line in enumerate(document["reasons"], 1)]
        footer = "" if matches else f"{args.explain} is not affected"
        emit(document, args.format, ["#", "reason"], rows, footer)
        return 0
    document = affected_lib.report(describe(base_revision), describe(head_revision), targets, timing)
    rows = [[t["label"], t["status"], t["kind"], t["reasons"][-1] if t["reasons"] else ""] for t in targets]
    emit(document, args.format, ["target", "status", "kind", "root cause"], rows,
         f"{len(targets)} affected; layers: {', '.join(document['layers']) or 'none'}")
    return 0


def cmd_artifacts(args: argparse.Namespace) -> int:
    from chimera_release import artifacts

    context = Context.from_args(args)
    document = artifacts.artifacts(context, context.repo.resolve(args.base), context.head(args.head))
    rows = [[a["label"], a["kind"], a["status"], ", ".join(a["changed_outputs"])] for a in document["artifacts"]]
    emit(document, args.format, ["target", "kind", "status", "changed outputs"], rows,
         f"{document['changed']} changed, {document['identical']} affected but byte-identical")
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    from chimera_release import graphq

    context = Context.from_args(args)
    revision = context.revision(args.rev)
    snapshot, _ = context.store.get(revision)
    document = {**graphq.query(snapshot, args.query, args.label), "revision": describe(revision)}
    if args.query == "deliverables":
        rows = [[layer, d["label"], d["kind"]] for layer, items in document["layers"].items() for d in items]
        emit(document, args.format, ["layer", "target", "kind"], rows)
    else:
        emit(document, args.format, [args.query + " of " + args.label], [[t] for t in document["targets"]],
             f"{document['count']} targets")
    return 0


def cmd_manifest(args: argparse.Namespace) -> int:
    import pathlib

    from chimera_release import manifest

    context = Context.from_args(args)
    ran = manifest.read_images_ran(pathlib.Path(args.images_ran)) if args.images_ran else None
    document = manifest.manifest(context, context.revision(args.rev), ran)
    rows = [[d["label"], d["kind"], d["layer"], o["sha256"][:16], o["size"], o["path"]]
            for d in document["deliverables"] for o in d["outputs"]]
    emit(document, args.format, ["target", "kind", "layer", "sha256", "size", "path"], rows,
         f"revision {document['revision']['commit'] or document['revision']['tree']}"
         f" (clean: {document['revision']['clean']}), lock sha256 {document['lock']['sha256']}")
    return 0


def cmd_sbom(args: argparse.Namespace) -> int:
    import pathlib

    from chimera_release import manifest, sbom

    context = Context.from_args(args)
    if args.manifest:
        try:
            release = json.loads(pathlib.Path(args.manifest).read_text())
        except (OSError, ValueError) as error:
            raise UsageError(f"--manifest {args.manifest}: {error}") from None
    else:
        release = manifest.manifest(context, context.revision(args.rev))
    lock = (context.repo.read(release["revision"]["tree"], release["lock"]["path"]) or b"").decode()
    site = pathlib.Path(args.site_packages) if args.site_packages else sbom.locate_site_packages(context)
    text = sbom.render(sbom.build_bom(release, lock, site))
    if args.format == "json":
        sys.stdout.write(text + "\n")
    else:
        document = json.loads(text)
        rows = [[c.get("type", ""), c["name"], c.get("version", ""),
                 ", ".join(l.get("expression") or l.get("license", {}).get("name") or l.get("license", {}).get("id", "")
                           for l in c.get("licenses", []))]
                for c in document.get("components", [])]
        emit(document, "table", ["type", "name", "version", "licences"], rows,
             f"CycloneDX {sbom.SPEC_VERSION}, {len(rows)} components")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    import pathlib

    from chimera_release import check_documents

    problems: list[str] = []
    checked = []
    for path, check in ((args.manifest, "manifest"), (args.sbom, "sbom")):
        if path is None:
            continue
        try:
            text = pathlib.Path(path).read_text()
            document = json.loads(text)
        except (OSError, ValueError) as error:
            raise UsageError(f"--{check} {path}: {error}") from None
        problems += check_documents.manifest_problems(document) if check == "manifest" else \
            check_documents.sbom_problems(text)
        checked.append(path)
    if not checked:
        raise UsageError("nothing to check: pass --manifest and/or --sbom")
    emit({"schema": "chimera.release.check/v1", "checked": checked, "valid": not problems, "problems": problems},
         args.format, ["problem"], [[p] for p in problems], "valid" if not problems else "INVALID")
    return 0 if not problems else 1


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="release", description="Release tooling over Chimera's build graph.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    affected = commands.add_parser("affected", help="targets affected between two revisions, with why")
    add_common_arguments(affected)
    affected.add_argument("--base", required=True, help="the base git revision")
    affected.add_argument("--head", default=None, help="the head revision (default: the working tree / HEAD)")
    affected.add_argument("--explain", default=None, metavar="LABEL", help="print the reason chain of one target")
    affected.set_defaults(run=cmd_affected)

    artifacts = commands.add_parser("artifacts", help="affected deliverables built at both revisions: changed or identical")
    add_common_arguments(artifacts)
    artifacts.add_argument("--base", required=True)
    artifacts.add_argument("--head", default=None)
    artifacts.set_defaults(run=cmd_artifacts)

    graph = commands.add_parser("graph", help="deliverables per layer, deps/rdeps/tests of a target")
    add_common_arguments(graph)
    graph.add_argument("query", choices=("deliverables", "deps", "rdeps", "tests"))
    graph.add_argument("label", nargs="?", default=None)
    graph.add_argument("--rev", default=None, help="revision (default: the working tree / HEAD)")
    graph.set_defaults(run=cmd_graph)

    manifest = commands.add_parser("manifest", help="release manifest: every deliverable built, with digests")
    add_common_arguments(manifest)
    manifest.add_argument("--rev", default=None, help="revision (default: the working tree / HEAD)")
    manifest.add_argument("--images-ran", default=None,
                          help="ci/containers.sh's record of the digests it ran: each image's must match")
    manifest.set_defaults(run=cmd_manifest)

    sbom = commands.add_parser("sbom", help="CycloneDX JSON SBOM of the release")
    add_common_arguments(sbom)
    sbom.add_argument("--rev", default=None, help="revision (default: the working tree / HEAD)")
    sbom.add_argument("--manifest", default=None, help="a manifest JSON from `manifest` (skips the build)")
    sbom.add_argument("--site-packages", default=None,
                      help="installed locked distributions, for licences (default: the @pypi repository)")
    sbom.set_defaults(run=cmd_sbom)

    check = commands.add_parser("check", help="validate a manifest (its JSON Schema) and an SBOM (CycloneDX 1.6)")
    check.add_argument("--manifest", default=None)
    check.add_argument("--sbom", default=None)
    check.add_argument("--format", choices=("json", "table"), default="json")
    check.set_defaults(run=cmd_check)

    from chimera_release import deploy_cli

    deploy_cli.add_parsers(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.run(args)
    except UsageError as error:
        print(f"release: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
