"""`release <command>`: the release tool's command line (exit 2 and one line on bad input).

The graph commands need only the standard library (CI runs `affected` as a
plain script), so the documents and deploy modules, which need cyclonedx,
jsonschema, grpc and kubernetes-validate, are imported by the commands that use them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import signal
import sys
import time
from typing import Any, Sequence

from chimera_release import graph
from chimera_release.errors import UsageError
from chimera_release.graph import SnapshotStore
from chimera_release.workspace import WORKING_TREE, Bazel, GitRepo, Revision

# ---------------------------------------------------------------------------
# Output: JSON (the stable, documented form) or a human table on stdout

def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def emit(document: dict[str, Any], fmt: str, headers: Sequence[str], rows: Sequence[Sequence[Any]],
         footer: str = "") -> None:
    if fmt == "json":
        # One write: json.dump would issue a write per token (slow on big reports).
        sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        return
    sys.stdout.write(table(headers, rows) + "\n")
    if footer:
        sys.stdout.write(footer + "\n")


# ---------------------------------------------------------------------------
# What every command needs: the repository, Bazel and the snapshot cache

def default_repo() -> str:
    # `bazel run` starts the tool inside its runfiles; the caller's tree is here.
    return os.environ.get("BUILD_WORKSPACE_DIRECTORY", os.getcwd())


def default_cache() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.environ.get("CHIMERA_RELEASE_CACHE", os.path.join(base, "chimera-release"))


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", default=default_repo(), help="the git repository (default: the workspace)")
    parser.add_argument("--cache-dir", default=default_cache(), help="per-revision hash cache")
    parser.add_argument("--bazel", default=os.environ.get("BAZEL", "bazel"), help="the Bazel binary")
    parser.add_argument("--bazel-output-user-root", default=None,
                        help="Bazel --output_user_root for the tool's own server")
    parser.add_argument("--output-base", default=None,
                        help="Bazel --output_base for the tool's own server (e.g. under /tmp in CI)")
    parser.add_argument("--keep-bazel-server", action="store_true",
                        help="leave the Bazel server this command started running (faster next cold run)")
    parser.add_argument("--format", choices=("json", "table"), default="json")
    parser.add_argument("--allow-dirty", action="store_true",
                        help="use the working tree (uncommitted changes) as the head revision")


@dataclasses.dataclass
class Context:
    store: SnapshotStore
    allow_dirty: bool
    keep_bazel_server: bool = False

    @property
    def repo(self) -> GitRepo:
        return self.store.repo

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "Context":
        repo_path = pathlib.Path(args.repo)
        if not repo_path.exists():
            raise UsageError(f"--repo {args.repo}: no such directory")
        repo = GitRepo(repo_path.resolve())
        root = pathlib.Path(args.bazel_output_user_root) if args.bazel_output_user_root else None
        output_base = pathlib.Path(args.output_base).resolve() if args.output_base else None
        bazel = Bazel(binary=args.bazel, output_user_root=root, output_base=output_base)
        return cls(store=SnapshotStore(repo, bazel, pathlib.Path(args.cache_dir)),
                   allow_dirty=args.allow_dirty, keep_bazel_server=args.keep_bazel_server)

    def close(self) -> None:
        """Shuts down the Bazel server this command started, unless asked to keep it."""
        if not self.keep_bazel_server:
            self.store.bazel.stop_started()

    def head(self, name: str | None) -> Revision:
        """The named revision, or the working tree (which must be clean unless allowed)."""
        if name is not None:
            return self.repo.resolve(name)
        if self.repo.is_dirty():
            if not self.allow_dirty:
                raise UsageError(f"the working tree of {self.repo.root} has uncommitted changes; "
                                 "commit them, name --head, or pass --allow-dirty")
            return self.repo.resolve(WORKING_TREE)
        return self.repo.resolve("HEAD")

    def revision(self, name: str | None) -> Revision:
        """A named revision, or (None) the working tree / HEAD as head() decides."""
        return self.head(None) if name is None else self.repo.resolve(name)


def _load_json(path: str, flag: str) -> dict[str, Any]:
    try:
        return json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError) as error:
        raise UsageError(f"{flag} {path}: {error}") from None


# ---------------------------------------------------------------------------
# The graph and document commands

class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: one line, exit 2
        raise UsageError(message)


def cmd_affected(args: argparse.Namespace) -> int:
    context = Context.from_args(args)
    try:
        return _affected(context, args)
    finally:
        context.close()


def _affected(context: Context, args: argparse.Namespace) -> int:
    base_revision = context.repo.resolve(args.base)
    head_revision = context.head(args.head)
    base, head, targets, timing = graph.between(context.store, base_revision, head_revision)
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
    document = graph.affected_report(base_revision.as_json(), head_revision.as_json(), targets, timing)
    rows = [[t["label"], t["status"], t["kind"], t["reasons"][-1] if t["reasons"] else ""] for t in targets]
    emit(document, args.format, ["target", "status", "kind", "root cause"], rows,
         f"{len(targets)} affected; layers: {', '.join(document['layers']) or 'none'}")
    return 0


def cmd_artifacts(args: argparse.Namespace) -> int:
    from chimera_release import documents

    context = Context.from_args(args)
    try:
        document = documents.artifacts(context.store, context.repo.resolve(args.base), context.head(args.head))
    finally:
        context.close()
    rows = [[a["label"], a["kind"], a["status"], ", ".join(a["changed_outputs"])] for a in document["artifacts"]]
    emit(document, args.format, ["target", "kind", "status", "changed outputs"], rows,
         f"{document['changed']} changed, {document['identical']} affected but byte-identical")
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    context = Context.from_args(args)
    revision = context.revision(args.rev)
    snapshot, _ = context.store.get(revision)
    document = {**graph.graph_query(snapshot, args.query, args.label), "revision": revision.as_json()}
    if args.query == "deliverables":
        rows = [[layer, d["label"], d["kind"]] for layer, items in document["layers"].items() for d in items]
        emit(document, args.format, ["layer", "target", "kind"], rows)
    else:
        emit(document, args.format, [args.query + " of " + args.label], [[t] for t in document["targets"]],
             f"{document['count']} targets")
    return 0


def cmd_manifest(args: argparse.Namespace) -> int:
    from chimera_release import documents

    context = Context.from_args(args)
    ran = documents.read_images_ran(pathlib.Path(args.images_ran)) if args.images_ran else None
    document = documents.manifest(context.store, context.revision(args.rev), ran)
    rows = [[d["label"], d["kind"], d["layer"], o["sha256"][:16], o["size"], o["path"]]
            for d in document["deliverables"] for o in d["outputs"]]
    emit(document, args.format, ["target", "kind", "layer", "sha256", "size", "path"], rows,
         f"revision {document['revision']['commit'] or document['revision']['tree']}"
         f" (clean: {document['revision']['clean']}), lock sha256 {document['lock']['sha256']}")
    return 0


def cmd_sbom(args: argparse.Namespace) -> int:
    from chimera_release import documents

    context = Context.from_args(args)
    if args.manifest:
        release = _load_json(args.manifest, "--manifest")
    else:
        release = documents.manifest(context.store, context.revision(args.rev))
    lock = (context.repo.read(release["revision"]["tree"], release["lock"]["path"]) or b"").decode()
    site = pathlib.Path(args.site_packages) if args.site_packages else documents.locate_site_packages(context.store)
    text = documents.render_bom(documents.build_bom(release, lock, site))
    if args.format == "json":
        sys.stdout.write(text + "\n")
    else:
        document = json.loads(text)
        rows = [[c.get("type", ""), c["name"], c.get("version", ""),
                 ", ".join(l.get("expression") or l.get("license", {}).get("name") or l.get("license", {}).get("id", "")
                           for l in c.get("licenses", []))]
                for c in document.get("components", [])]
        emit(document, "table", ["type", "name", "version", "licences"], rows,
             f"CycloneDX {documents.SBOM_SPEC_VERSION}, {len(rows)} components")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from chimera_release import documents

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
        problems += documents.manifest_problems(document) if check == "manifest" else \
            documents.sbom_problems(text)
        checked.append(path)
    if not checked:
        raise UsageError("nothing to check: pass --manifest and/or --sbom")
    emit({"schema": "chimera.release.check/v1", "checked": checked, "valid": not problems, "problems": problems},
         args.format, ["problem"], [[p] for p in problems], "valid" if not problems else "INVALID")
    return 0 if not problems else 1


# ---------------------------------------------------------------------------
# deploy and validate (the specification's deploy_chimera.py / validate_deployment.py)

DEPLOY_SCHEMA = "chimera.release.deploy/v1"


def _release(args: argparse.Namespace) -> dict[str, Any]:
    from chimera_release import documents

    if args.manifest:
        release = _load_json(args.manifest, "--manifest")
        if release.get("schema") != documents.MANIFEST_SCHEMA:
            raise UsageError(f"--manifest {args.manifest}: not a {documents.MANIFEST_SCHEMA} document")
        return release
    context = Context.from_args(args)
    return documents.manifest(context.store, context.revision(args.rev))


def _removed_layers(args: argparse.Namespace, release: dict[str, Any]) -> dict[str, str]:
    """Layer -> removed server label, from --delta: the release's `affected` or `artifacts` document."""
    from chimera_release import deploy

    if not args.delta:
        return {}
    delta = _load_json(args.delta, "--delta")
    source = f"--delta {args.delta}"
    removed = deploy.removed_layers(delta, source)
    head_tree = (delta.get("head") or {}).get("tree")
    if head_tree != release["revision"]["tree"]:
        raise UsageError(f"{source}: its head tree {str(head_tree)[:12]} is not the manifest's revision "
                         f"{release['revision']['tree'][:12]}")
    still_listed = sorted(set(removed) & {b.layer for b in deploy.layer_binaries(release)})
    if still_listed:
        raise UsageError(f"{source}: removes {', '.join(still_listed)}, which the manifest still deploys")
    return removed


def _state_path(args: argparse.Namespace) -> pathlib.Path:
    return pathlib.Path(args.state or pathlib.Path(args.cache_dir) / "deployments" / "local.json")


def _hold(seconds: float) -> None:
    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if seconds < 0:
        while True:
            signal.pause()
    time.sleep(seconds)


def _deploy_local(args: argparse.Namespace, release: dict[str, Any]) -> int:
    from chimera_release import deploy

    binaries = deploy.layer_binaries(release)
    if not binaries:
        raise UsageError("the manifest lists no layer servers")
    if args.canary is not None and not args.baseline_manifest:
        raise UsageError("--canary on --environment local needs --baseline-manifest (the stable release)")
    removed = _removed_layers(args, release)
    state_path = _state_path(args)
    deployment = deploy.LocalDeployment(state_path.parent / "local-run")
    revision = release["revision"].get("commit") or release["revision"]["tree"]
    status = 0
    try:
        canary: list[dict[str, Any]] = []
        try:
            if args.canary is not None:
                baseline = _load_json(args.baseline_manifest, "--baseline-manifest")
                deployment.start(deploy.layer_binaries(baseline),
                                 baseline["revision"].get("commit") or baseline["revision"]["tree"])
                # The new builds are never wired to a removed layer; its stable
                # instance serves the old ones until the rollout completes.
                deployment.forget(list(removed))
                canary = deployment.canary(binaries, revision, args.canary, args.probes, args.max_error_rate)
                status = 1 if any(c["result"] == "rolled_back" for c in canary) else 0
            else:
                deployment.start(binaries, revision)
            # After a rollback the stable layers still use the removed ones: they stay.
            teardown = deployment.tear_down(removed) if status == 0 else [
                {"layer": layer, "label": label, "result": "kept_after_rollback"} for layer, label in removed.items()]
        except deploy.DeployError as error:
            print(f"release: deploy failed: {error}", file=sys.stderr)
            return 1
        deployment.write_state(state_path)
        document: dict[str, Any] = {"schema": DEPLOY_SCHEMA, "environment": "local", "state": str(state_path),
                                    **deployment.state()}
        if canary:
            document["canary"] = canary
        if args.delta:
            document["teardown"] = teardown
        if args.validate:
            document["validation"] = deploy.check_deployment(json.loads(state_path.read_text()))
            status = status or (0 if document["validation"]["healthy"] else 1)
        rows = [[l["layer"], l["target"], l["revision"][:12], l["sha256"][:16]] for l in document["layers"]]
        emit(document, args.format, ["layer", "target", "revision", "sha256"], rows,
             f"state: {state_path}" + (f"; canary: {[c['result'] for c in canary]}" if canary else "")
             + (f"; teardown: {[(t['layer'], t['result']) for t in teardown]}" if args.delta else ""))
        sys.stdout.flush()
        if status == 0:
            _hold(args.hold)
        return status
    finally:
        deployment.stop()
        if state_path.is_file():
            state_path.unlink()


def _deploy_kubernetes(args: argparse.Namespace, release: dict[str, Any]) -> int:
    from chimera_release import deploy

    binaries = deploy.layer_binaries(release)
    if not binaries:
        raise UsageError("the manifest lists no layer servers")
    images = {d["layer"]: d["image"]["digest"] for d in release["deliverables"] if d["kind"] == "image"}
    imageless = sorted(b.layer for b in binaries if b.layer not in images)
    if imageless:
        raise UsageError(f"the manifest lists no image of {', '.join(imageless)}: the Kubernetes manifests "
                         "reference each layer's image by its digest (bazel build //tools/oci:images)")
    context = Context.from_args(args)
    tree = release["revision"]["tree"]
    protos = [(context.repo.read(tree, path) or b"").decode(errors="replace")
              for path in context.repo.file_digests(tree) if path.endswith(".proto")]
    services = deploy.proto_services(protos)
    teardown = [{"layer": layer, "label": label, "objects": deploy.teardown_objects(layer)}
                for layer, label in _removed_layers(args, release).items()]
    short_names = {b.short_name: b.layer for b in binaries}
    specs = []
    for binary in binaries:
        flags = deploy.target_flags(binary) if binary.executable.is_file() else []
        peers = {f: short_names[f.replace("-", "_")] for f in flags if f.replace("-", "_") in short_names}
        specs.append(deploy.LayerSpec(binary.layer, deploy.layer_service(binary.layer, services), peers,
                                      binary.sha256, images[binary.layer]))
    env = deploy.ENVIRONMENTS[args.environment]
    files = deploy.render_kubernetes(specs, env, release["revision"].get("commit") or tree, args.registry,
                                     args.canary or 0)
    problems = deploy.validate_kubernetes(files)
    output = pathlib.Path(args.output_dir or pathlib.Path.cwd() / f"k8s-{args.environment}")
    written = deploy.write_kubernetes(files, output, teardown) if not problems else []
    document = {"schema": DEPLOY_SCHEMA, "environment": args.environment, "output_dir": str(output),
                "kubernetes_version": deploy.KUBERNETES_VERSION, "files": written,
                "objects": [{"file": name, "kind": o["kind"], "name": o["metadata"]["name"]}
                            for name, objects in files.items() for o in objects],
                "valid": not problems, "problems": problems, "applied": False}
    if args.delta:
        document["teardown"] = teardown
    emit(document, args.format, ["file", "kind", "name"],
         [[o["file"], o["kind"], o["name"]] for o in document["objects"]],
         f"{'valid' if not problems else 'INVALID'} against Kubernetes {deploy.KUBERNETES_VERSION}; "
         f"written to {output}; not applied"
         + (f"; teardown.json: {sum(len(t['objects']) for t in teardown)} objects to delete" if args.delta else ""))
    return 0 if not problems else 1


def cmd_deploy(args: argparse.Namespace) -> int:
    if args.canary is not None and not 0 < args.canary <= 100:
        raise UsageError(f"--canary {args.canary:g}: a percentage in (0, 100]")
    if not 0 <= args.max_error_rate < 1:
        raise UsageError(f"--max-error-rate {args.max_error_rate:g}: a fraction in [0, 1)")
    release = _release(args)
    if args.environment == "local":
        return _deploy_local(args, release)
    return _deploy_kubernetes(args, release)


def cmd_validate(args: argparse.Namespace) -> int:
    from chimera_release import deploy

    if not args.check_health:
        raise UsageError("nothing to validate: pass --check-health")
    state_path = _state_path(args)
    if not state_path.is_file():
        raise UsageError(f"no running deployment recorded at {state_path}; run deploy --environment local first")
    report = deploy.check_deployment(_load_json(str(state_path), "--state"))
    if args.generate_report:
        report["reports"] = deploy.write_reports(report, pathlib.Path(args.report_dir or state_path.parent))
    rows = [[l["layer"], l["target"], "yes" if l["healthy"] else "NO", l["version"]["revision"][:12],
             "yes" if l["version"]["binary_matches"] else "NO"] for l in report["layers"]]
    emit(report, args.format, ["layer", "target", "healthy", "revision", "binary matches"], rows,
         "healthy" if report["healthy"] else "UNHEALTHY")
    return 0 if report["healthy"] else 1


def add_deploy_parsers(commands: Any) -> None:
    deploy = commands.add_parser("deploy", help="start the layers locally, or render Kubernetes manifests")
    add_common_arguments(deploy)
    deploy.add_argument("--environment", required=True, choices=("local", "staging", "production"))
    deploy.add_argument("--manifest", default=None, help="a manifest from `manifest` (default: build one)")
    deploy.add_argument("--rev", default=None, help="revision to build when no --manifest is given")
    deploy.add_argument("--validate", action="store_true", help="check every layer after bring-up")
    deploy.add_argument("--canary", type=float, default=None, metavar="PERCENT",
                        help="move one layer at a time, PERCENT of traffic to the new build first")
    deploy.add_argument("--delta", default=None, metavar="FILE",
                        help="the release's `affected` report or `artifacts` document: its removed layers are torn down")
    deploy.add_argument("--baseline-manifest", default=None, help="local canary: the stable release's manifest")
    deploy.add_argument("--max-error-rate", type=float, default=0.0, help="canary error budget (fraction)")
    deploy.add_argument("--probes", type=int, default=40, help="local canary: probe requests per layer")
    deploy.add_argument("--hold", type=float, default=-1,
                        help="local: seconds to keep serving (default: until SIGINT/SIGTERM; 0: stop at once)")
    deploy.add_argument("--state", default=None, help="local: where the running deployment is recorded")
    deploy.add_argument("--output-dir", default=None, help="staging/production: where manifests are written")
    deploy.add_argument("--registry", default="registry.invalid/chimera", help="image registry prefix")
    deploy.set_defaults(run=cmd_deploy)

    validate = commands.add_parser("validate", help="health and version of every layer of a local deployment")
    validate.add_argument("--check-health", action="store_true")
    validate.add_argument("--generate-report", action="store_true", help="also write validation.json and .html")
    validate.add_argument("--report-dir", default=None)
    validate.add_argument("--state", default=None)
    validate.add_argument("--cache-dir", default=default_cache())
    validate.add_argument("--format", choices=("json", "table"), default="json")
    validate.set_defaults(run=cmd_validate)


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

    add_deploy_parsers(commands)
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
