"""wheel_cache_store.py stores a repository's tree whole, by rename, and never
replaces an entry."""

import subprocess
import sys
import tarfile
from pathlib import Path

from runfiles import Runfiles

STORE = Runfiles.Create().Rlocation("chimera/tools/python/private/wheel_cache_store.py")


def _store(repository: Path, entry: Path, *paths: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, STORE, str(entry), *paths], cwd=repository, capture_output=True, text=True)


def _repository(root: Path, marker: str) -> Path:
    (root / "site-packages" / "pkg").mkdir(parents=True)
    (root / "site-packages" / "pkg" / "__init__.py").write_text(marker)
    (root / "BUILD").write_text("py_library(name = 'pkg')\n")
    return root


def test_stores_the_named_paths_and_leaves_no_partial_file(tmp_path):
    repository = _repository(tmp_path / "repo", "first")
    entry = tmp_path / "cache" / "pkg-abc-py3.11.2-1.tar"
    assert _store(repository, entry, "site-packages", "BUILD").returncode == 0
    with tarfile.open(entry) as tar:
        assert sorted(tar.getnames()) == ["BUILD", "site-packages", "site-packages/pkg", "site-packages/pkg/__init__.py"]
        assert tar.extractfile("site-packages/pkg/__init__.py").read() == b"first"
    assert [p.name for p in entry.parent.iterdir()] == [entry.name]


def test_an_existing_entry_is_kept(tmp_path):
    entry = tmp_path / "cache" / "pkg.tar"
    assert _store(_repository(tmp_path / "one", "first"), entry, "site-packages").returncode == 0
    assert _store(_repository(tmp_path / "two", "second"), entry, "site-packages").returncode == 0
    with tarfile.open(entry) as tar:
        assert tar.extractfile("site-packages/pkg/__init__.py").read() == b"first"


def test_usage_error_exits_2(tmp_path):
    result = _store(tmp_path, tmp_path / "entry.tar")
    assert result.returncode == 2 and "usage" in result.stderr
