"""`release <command>`: the release tool's command line (exit 2 on bad input)."""

from __future__ import annotations

import argparse
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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="release", description="Release tooling over Chimera's build graph.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    affected = commands.add_parser("affected", help="targets affected between two revisions, with why")
    add_common_arguments(affected)
    affected.add_argument("--base", required=True, help="the base git revision")
    affected.add_argument("--head", default=None, help="the head revision (default: the working tree / HEAD)")
    affected.add_argument("--explain", default=None, metavar="LABEL", help="print the reason chain of one target")
    affected.set_defaults(run=cmd_affected)
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
