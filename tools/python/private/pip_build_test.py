"""pip_build.py turns one installed distribution into the right py_library."""

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
    for path in files:
        (site / path).parent.mkdir(parents=True, exist_ok=True)
        (site / path).write_text("")


def _generate(site: Path, distribution: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, GENERATOR, str(site), distribution, "pypi", "//:lock.txt"],
        capture_output=True,
        text=True,
    )


def test_deps_follow_metadata_markers_and_extras(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    _install(
        site,
        "Protobuf_Ext",
        "Protobuf_Ext",
        "1.0",
        ["google/protobuf/__init__.py"],
        [
            "typing_extensions>=4",
            "windows-only; sys_platform == 'win32'",
            "test-extra; extra == 'test'",
            "Protobuf-Ext",  # a distribution naming itself is not its own dep
        ],
    )
    result = _generate(site, "protobuf-ext")
    assert result.returncode == 0, result.stderr
    build = result.stdout
    assert 'load("@pypi//:locked.bzl", "locked")' in build
    assert 'name = "pkg",  # protobuf-ext 1.0' in build
    # The repository holds one distribution, so all of site-packages is its own.
    assert '["site-packages/**"]' in build
    assert 'imports = ["site-packages"]' in build
    # Dependencies behind unmet markers or unrequested extras are left out;
    # locked() drops those the lock does not pin.
    assert 'deps = locked(["typing-extensions"])' in build


def test_a_wheel_of_another_name_is_refused(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    _install(site, "numpy", "numpy", "2.0", ["numpy/__init__.py"], [])
    result = _generate(site, "scipy")
    assert result.returncode == 2
    assert result.stderr.strip() == "the lock's scipy installed a wheel named numpy"


def test_exactly_one_distribution_is_expected(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    _install(site, "a", "a", "1.0", ["a.py"], [])
    _install(site, "b", "b", "1.0", ["b.py"], [])
    result = _generate(site, "a")
    assert result.returncode == 2
    assert "found: a-1.0.dist-info, b-1.0.dist-info" in result.stderr
