"""The `deploy` and `validate` commands (the specification's deploy_chimera.py / validate_deployment.py)."""

from __future__ import annotations

import argparse
import json
import pathlib
import signal
import sys
import time
from typing import Any

from chimera_release.context import Context, add_common_arguments, default_cache
from chimera_release.errors import UsageError
from chimera_release.output import emit

DEPLOY_SCHEMA = "chimera.release.deploy/v1"


def _load_json(path: str, flag: str) -> dict[str, Any]:
    try:
        return json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError) as error:
        raise UsageError(f"{flag} {path}: {error}") from None


def _release(args: argparse.Namespace) -> dict[str, Any]:
    if args.manifest:
        release = _load_json(args.manifest, "--manifest")
        if release.get("schema") != "chimera.release.manifest/v1":
            raise UsageError(f"--manifest {args.manifest}: not a chimera.release.manifest/v1 document")
        return release
    from chimera_release import manifest

    context = Context.from_args(args)
    return manifest.manifest(context, context.revision(args.rev))


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
    from chimera_release import local_deploy, validation

    binaries = local_deploy.layer_binaries(release)
    if not binaries:
        raise UsageError("the manifest lists no layer servers")
    if args.canary is not None and not args.baseline_manifest:
        raise UsageError("--canary on --environment local needs --baseline-manifest (the stable release)")
    state_path = _state_path(args)
    deployment = local_deploy.LocalDeployment(state_path.parent / "local-run")
    revision = release["revision"].get("commit") or release["revision"]["tree"]
    status = 0
    try:
        canary: list[dict[str, Any]] = []
        try:
            if args.canary is not None:
                baseline = _load_json(args.baseline_manifest, "--baseline-manifest")
                deployment.start(local_deploy.layer_binaries(baseline),
                                 baseline["revision"].get("commit") or baseline["revision"]["tree"])
                canary = deployment.canary(binaries, revision, args.canary, args.probes, args.max_error_rate)
                status = 1 if any(c["result"] == "rolled_back" for c in canary) else 0
            else:
                deployment.start(binaries, revision)
        except local_deploy.DeployError as error:
            print(f"release: deploy failed: {error}", file=sys.stderr)
            return 1
        deployment.write_state(state_path)
        document: dict[str, Any] = {"schema": DEPLOY_SCHEMA, "environment": "local", "state": str(state_path),
                                    **deployment.state()}
        if canary:
            document["canary"] = canary
        if args.validate:
            document["validation"] = validation.check(json.loads(state_path.read_text()))
            status = status or (0 if document["validation"]["healthy"] else 1)
        rows = [[l["layer"], l["target"], l["revision"][:12], l["sha256"][:16]] for l in document["layers"]]
        emit(document, args.format, ["layer", "target", "revision", "sha256"], rows,
             f"state: {state_path}" + (f"; canary: {[c['result'] for c in canary]}" if canary else ""))
        sys.stdout.flush()
        if status == 0:
            _hold(args.hold)
        return status
    finally:
        deployment.stop()
        if state_path.is_file():
            state_path.unlink()


def _deploy_kubernetes(args: argparse.Namespace, release: dict[str, Any]) -> int:
    from chimera_release import kubernetes, local_deploy

    binaries = local_deploy.layer_binaries(release)
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
    services = kubernetes.proto_services(protos)
    short_names = {b.short_name: b.layer for b in binaries}
    specs = []
    for binary in binaries:
        flags = local_deploy.target_flags(binary) if binary.executable.is_file() else []
        peers = {f: short_names[f.replace("-", "_")] for f in flags if f.replace("-", "_") in short_names}
        specs.append(kubernetes.LayerSpec(binary.layer, kubernetes.layer_service(binary.layer, services), peers,
                                          binary.sha256, images[binary.layer]))
    env = kubernetes.ENVIRONMENTS[args.environment]
    files = kubernetes.render(specs, env, release["revision"].get("commit") or tree, args.registry, args.canary or 0)
    problems = kubernetes.validate(files)
    output = pathlib.Path(args.output_dir or pathlib.Path.cwd() / f"k8s-{args.environment}")
    written = kubernetes.write(files, output) if not problems else []
    document = {"schema": DEPLOY_SCHEMA, "environment": args.environment, "output_dir": str(output),
                "kubernetes_version": kubernetes.KUBERNETES_VERSION, "files": written,
                "objects": [{"file": name, "kind": o["kind"], "name": o["metadata"]["name"]}
                            for name, objects in files.items() for o in objects],
                "valid": not problems, "problems": problems, "applied": False}
    emit(document, args.format, ["file", "kind", "name"],
         [[o["file"], o["kind"], o["name"]] for o in document["objects"]],
         f"{'valid' if not problems else 'INVALID'} against Kubernetes {kubernetes.KUBERNETES_VERSION}; "
         f"written to {output}; not applied")
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
    from chimera_release import validation

    if not args.check_health:
        raise UsageError("nothing to validate: pass --check-health")
    state_path = _state_path(args)
    if not state_path.is_file():
        raise UsageError(f"no running deployment recorded at {state_path}; run deploy --environment local first")
    report = validation.check(_load_json(str(state_path), "--state"))
    if args.generate_report:
        report["reports"] = validation.write_reports(report, pathlib.Path(args.report_dir or state_path.parent))
    rows = [[l["layer"], l["target"], "yes" if l["healthy"] else "NO", l["version"]["revision"][:12],
             "yes" if l["version"]["binary_matches"] else "NO"] for l in report["layers"]]
    emit(report, args.format, ["layer", "target", "healthy", "revision", "binary matches"], rows,
         "healthy" if report["healthy"] else "UNHEALTHY")
    return 0 if report["healthy"] else 1


def add_parsers(commands: Any) -> None:
    deploy = commands.add_parser("deploy", help="start the layers locally, or render Kubernetes manifests")
    add_common_arguments(deploy)
    deploy.add_argument("--environment", required=True, choices=("local", "staging", "production"))
    deploy.add_argument("--manifest", default=None, help="a manifest from `manifest` (default: build one)")
    deploy.add_argument("--rev", default=None, help="revision to build when no --manifest is given")
    deploy.add_argument("--validate", action="store_true", help="check every layer after bring-up")
    deploy.add_argument("--canary", type=float, default=None, metavar="PERCENT",
                        help="move one layer at a time, PERCENT of traffic to the new build first")
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
