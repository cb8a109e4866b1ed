"""Turns pip-audit's JSON (`-f json`) into a table with the fix versions, applying the
reviewed ignore list (ci/audit/ignore.json).

    python3 ci/audit/report.py AUDIT.json [--ignore ci/audit/ignore.json]

Exit 0: no finding outside the ignore list and every package audited; 1: findings or
packages pip-audit could not audit (listed); 2: bad input. Ignore entries whose finding
is gone are listed as stale, so the list shrinks when upgrades land.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    vuln_id: str
    fix_versions: tuple[str, ...]
    aliases: tuple[str, ...]

    def ids(self) -> set[str]:
        return {self.vuln_id, *self.aliases}


@dataclass(frozen=True)
class Audit:
    audited: int
    findings: tuple[Finding, ...]
    skipped: tuple[tuple[str, str], ...]  # (package, why pip-audit could not audit it)


class BadInput(Exception):
    pass


def parse(data: Any) -> Audit:
    if not isinstance(data, dict) or not isinstance(data.get("dependencies"), list):
        raise BadInput('not pip-audit JSON output (no "dependencies" list)')
    findings, skipped, audited = [], [], 0
    for dep in data["dependencies"]:
        name, version = str(dep.get("name", "?")), str(dep.get("version", "?"))
        if dep.get("skip_reason"):
            skipped.append((name, str(dep["skip_reason"])))
            continue
        audited += 1
        for vuln in dep.get("vulns", []):
            findings.append(Finding(name, version, str(vuln["id"]), tuple(vuln.get("fix_versions", [])),
                                    tuple(vuln.get("aliases", []))))
    return Audit(audited, tuple(findings), tuple(skipped))


def load_ignores(path: Path) -> dict[str, dict[str, str]]:
    """id -> entry; every entry must say which package, why, and when it was reviewed."""
    try:
        entries = json.loads(path.read_text())["ignore"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise BadInput(f"{path}: not an ignore list ({err})") from err
    ignores = {}
    for entry in entries:
        missing = [k for k in ("id", "package", "reason", "reviewed") if not str(entry.get(k, "")).strip()]
        if missing:
            raise BadInput(f"{path}: entry {entry.get('id', '?')!r} lacks {', '.join(missing)}")
        ignores[entry["id"]] = entry
    return ignores


def table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def run(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="audit-report", description=__doc__.split("\n\n")[0])
    p.add_argument("audit", type=Path, help="pip-audit -f json output")
    p.add_argument("--ignore", type=Path, default=Path(__file__).with_name("ignore.json"))
    args = p.parse_args(argv)
    try:
        audit = parse(json.loads(args.audit.read_text()))
        ignores = load_ignores(args.ignore)
    except (OSError, json.JSONDecodeError, BadInput) as err:
        print(f"audit-report: bad input: {err}", file=sys.stderr)
        return 2

    rows, open_findings, used = [], [], set()
    for f in sorted(audit.findings, key=lambda f: (f.package, f.vuln_id)):
        entry = next((ignores[i] for i in sorted(f.ids()) if i in ignores), None)
        if entry is not None:
            used.add(entry["id"])
        else:
            open_findings.append(f)
        verdict = f"ignored: {entry['reason']} (reviewed {entry['reviewed']})" if entry else "OPEN"
        rows.append([f.package, f.version, f.vuln_id, ", ".join(f.fix_versions) or "none yet",
                     ", ".join(f.aliases) or "-", verdict])
    print(f"pip-audit: {audit.audited} packages audited, {len(audit.findings)} known vulnerabilities, "
          f"{len(open_findings)} open, {len(audit.findings) - len(open_findings)} ignored")
    if rows:
        print(table(rows, ["package", "version", "id", "fix versions", "aliases", "verdict"]))
    for name, why in audit.skipped:
        print(f"NOT AUDITED: {name}: {why}")
    for stale in sorted(set(ignores) - used):
        print(f"stale ignore (no longer found; remove it from {args.ignore.name}): {stale}")
    return 1 if open_findings or audit.skipped else 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
