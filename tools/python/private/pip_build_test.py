"""pip_build.py turns installed distributions into the right py_library targets."""

import subprocess
import sys
from pathlib import Path

from runfiles import Runfiles

GENERATOR = Runfiles.Create().Rlocation("chimera/tools/python/private/pip_build.py")


def _install(site: Path, dist: str, name: str, version: str, files: list[str], requires: list[str]) -> None:
    info = site / f"{dist}-{version}.dist-info"
    info.mkdir(parents=True)
    metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    metadata += [f"Requires-Dist: {spec}" for spec in requires]
    (info / "METADATA").write_text("\n".join(metadata) + "\n")
    records = files + [f"{info.name}/METADATA", f"{info.name}/RECORD"]
    (info / "RECORD").write_text("".join(f"{path},,\n" for path in records))
    for path in files:
        (site / path).parent.mkdir(parents=True, exist_ok=True)
        (site / path).write_text("")


def _generate(tmp_path: Path, lock_names: list[str]) -> str:
    lock = tmp_path / "lock.txt"
    lock.write_text("".join(f"{name}==1.0 \\\n    --hash=sha256:00\n" for name in lock_names))
    result = subprocess.run(
        [sys.executable, GENERATOR, str(tmp_path / "site-packages"), str(lock), "//:lock.txt"],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout


def test_targets_deps_markers_and_namespaces(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    _install(site, "grpcio", "grpcio", "1.0", ["grpc/__init__.py"], ["typing-extensions>=4"])
    _install(
        site,
        "protobuf",
        "protobuf",
        "1.0",
        ["google/protobuf/__init__.py", "google/protobuf/timestamp_pb2.py"],
        ["windows-only; sys_platform == 'win32'", "test-extra; extra == 'test'"],
    )
    _install(site, "typing_extensions", "typing_extensions", "1.0", ["typing_extensions.py"], [])
    build = _generate(tmp_path, ["grpcio", "protobuf", "typing-extensions", "windows-only", "test-extra"])

    grpcio = build[build.index('name = "grpcio"') :].split(")\n")[0]
    assert '"site-packages/grpc/**"' in grpcio
    assert 'deps = [":typing-extensions"]' in grpcio

    # A namespace package (google/) is narrowed to the distribution's own subtree,
    # and dependencies behind unmet markers or extras are left out.
    protobuf = build[build.index('name = "protobuf"') :].split(")\n")[0]
    assert '"site-packages/google/protobuf/**"' in protobuf
    assert '"site-packages/google/**"' not in protobuf
    assert "deps = []" in protobuf

    assert 'name = "typing-extensions"' in build
    assert '"site-packages/typing_extensions.py"' in build


def test_requirements_missing_from_lock_are_skipped(tmp_path: Path) -> None:
    _install(tmp_path / "site-packages", "a", "a", "1.0", ["a/__init__.py"], ["b", "c"])
    build = _generate(tmp_path, ["a", "b"])
    assert 'deps = [":b"]' in build
