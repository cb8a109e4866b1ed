"""The lock's resolution (dpkg's version order, the closure, exclusions) and the base
layer's unpacking, on small .debs made here (ar + control.tar + data.tar.xz)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

import build_layer
import lock


@pytest.mark.parametrize("a, b, newer", [
    # Each checked against `dpkg --compare-versions a gt b` on Debian 12.
    ("2.36-9+deb12u14", "2.36-9+deb12u7", True),
    ("1:1.2", "2.0", True),
    ("1.0~rc1", "1.0", False),
    ("1.0", "1.0~rc1", True),
    ("3.0.22-1~deb12u2", "3.0.17-1~deb12u2", True),
    ("1.0a", "1.0", True),
    ("1.0", "1.0+b1", False),
    ("1.2.3", "1.2.3", False),
])
def test_versions_sort_as_dpkg_sorts_them(a: str, b: str, newer: bool) -> None:
    assert lock.newer(a, b) is newer


def _stanza(name: str, version: str, depends: str = "") -> dict[str, str]:
    return {"Package": name, "Version": version, "Architecture": "amd64", "Filename": f"pool/{name}.deb",
            "SHA256": hashlib.sha256(name.encode()).hexdigest(), "Size": "10", "Depends": depends}


def test_the_closure_follows_depends_and_leaves_out_the_excluded(tmp_path: Path) -> None:
    roots_file = tmp_path / "base.in"
    roots_file.write_text("# roots\napp\n!debconf\n")
    roots = lock.read_roots(roots_file)
    index = {name: ("bookworm", stanza) for name, stanza in {
        "app": _stanza("app", "1", "libc6 (>= 2.34), zlib1g | libz-other, debconf (>= 0.5) | debconf-2.0"),
        "libc6": _stanza("libc6", "2.36", "libgcc-s1"),
        "libgcc-s1": _stanza("libgcc-s1", "12", "libc6"),  # a cycle
        "zlib1g": _stanza("zlib1g", "1.2"),
        "debconf": _stanza("debconf", "1.5", "perl-base"),
    }.items()}
    locked = lock.resolve(roots, index)
    assert sorted(locked) == ["app", "libc6", "libgcc-s1", "zlib1g"]
    assert locked["app"]["depends"] == ["libc6", "zlib1g"]
    assert locked["zlib1g"]["url"] == "http://deb.debian.org/debian/pool/zlib1g.deb"
    del index["zlib1g"]
    with pytest.raises(lock.LockError, match="app: no alternative of zlib1g | libz-other"):
        lock.resolve(roots, index)


@pytest.mark.parametrize("text, message", [
    ("Bad_Name\n", "is not a Debian package name"),
    ("# nothing\n", "no packages"),
    ("app\n!app\n", "both wanted and excluded: app"),
])
def test_a_bad_roots_file_is_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "base.in"
    path.write_text(text)
    with pytest.raises(lock.LockError, match=message):
        lock.read_roots(path)


def _tar(entries: list[tarfile.TarInfo | tuple[str, bytes]], mode: str) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as tar:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry)
            else:
                info = tarfile.TarInfo(entry[0])
                info.size, info.mode, info.mtime = len(entry[1]), 0o755 if "/bin/" in entry[0] else 0o644, 1700000000
                tar.addfile(info, io.BytesIO(entry[1]))
    return out.getvalue()


def _deb(name: str, files: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    control = _tar([("./control", f"Package: {name}\nVersion: 1.0\n".encode())], "w:gz")
    data = _tar([tarfile.TarInfo("./usr/")] + files, "w:xz")
    out = b"!<arch>\n"
    for member, content in (("debian-binary", b"2.0\n"), ("control.tar.gz", control), ("data.tar.xz", data)):
        out += f"{member:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(content):<10}`\n".encode() + content
        out += b"\n" if len(content) % 2 else b""
    return out


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


@pytest.fixture
def debs(tmp_path: Path) -> tuple[dict, Path]:
    folder = tmp_path / "debs"
    folder.mkdir()
    made = {
        "python3.11-minimal": _deb("python3.11-minimal", [
            ("./usr/bin/python3.11", b"\x7fELF python"),
            _link("./usr/bin/python3", "python3.11"),
            _link("./usr/bin/python3.11-hard", "./usr/bin/python3.11", tarfile.LNKTYPE),
            ("./usr/share/doc/python3.11-minimal/changelog.gz", b"x"),
            ("./usr/share/doc/python3.11-minimal/copyright", b"PSF"),
        ]),
        "ca-certificates": _deb("ca-certificates", [
            ("./usr/share/ca-certificates/mozilla/B.crt", b"-----B-----\n"),
            ("./usr/share/ca-certificates/mozilla/A.crt", b"-----A-----"),
        ]),
    }
    packages = []
    for name, deb in sorted(made.items()):
        (folder / f"{name}.deb").write_bytes(deb)
        packages.append({"name": name, "version": "1.0", "architecture": "amd64", "source": name,
                         "sha256": hashlib.sha256(deb).hexdigest(), "url": f"http://deb.debian.org/{name}.deb"})
    return {"architecture": "amd64", "packages": packages}, folder


def test_the_layer_holds_the_packages_files_and_what_their_scripts_would_make(debs, tmp_path: Path) -> None:
    locked, folder = debs
    blob = tmp_path / "base.tar.gz"
    info = build_layer.build(locked, folder, blob, ["/usr/bin/python3"], "65532:65532")
    data = blob.read_bytes()
    assert info["descriptor"] == {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                  "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data)}
    tar_bytes = gzip.decompress(data)
    assert info["diff_id"] == "sha256:" + hashlib.sha256(tar_bytes).hexdigest()
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        read = lambda name: tar.extractfile(members[name]).read()  # noqa: E731
        names = list(members)
        assert names == sorted(names)
        assert all(m.mtime == 0 and m.uname == m.gname == "" for m in members.values())
        assert read("etc/ssl/certs/ca-certificates.crt") == b"-----A-----\n-----B-----\n"
        assert b"nonroot:x:65532:65532:" in read("etc/passwd")
        assert read("var/lib/dpkg/status.d/ca-certificates").startswith(b"Package: ca-certificates\n")
        assert members["usr/bin/python3"].issym() and members["usr/bin/python3"].linkname == "python3.11"
        assert read("usr/bin/python3.11-hard") == b"\x7fELF python"  # a hard link becomes a copy
        assert "usr/share/doc/python3.11-minimal/copyright" in members
        assert "usr/share/doc/python3.11-minimal/changelog.gz" not in members
        assert (members["home/nonroot"].uid, members["tmp"].mode) == (65532, 0o1777)
    assert [p["name"] for p in info["packages"]] == ["ca-certificates", "python3.11-minimal"]
    assert info["certificates"] == 2 and "/usr/bin/python3.11" in info["paths"]
    again = tmp_path / "again.tar.gz"
    assert build_layer.build(locked, folder, again, [], "65532:65532")["descriptor"] == info["descriptor"]


def test_a_changed_deb_a_missing_interpreter_and_a_clash_are_named(debs, tmp_path: Path) -> None:
    locked, folder = debs
    changed = json.loads(json.dumps(locked))
    changed["packages"][1]["sha256"] = "0" * 64
    with pytest.raises(build_layer.LayerError, match="Debian package python3.11-minimal 1.0: the .deb has SHA-256"):
        build_layer.build(changed, folder, tmp_path / "x.tar.gz", [], "65532")
    with pytest.raises(build_layer.LayerError, match="not a file in the layer: /usr/bin/python3.12"):
        build_layer.build(locked, folder, tmp_path / "x.tar.gz", ["/usr/bin/python3.12"], "65532")
    clash = _deb("other", [("./usr/bin/python3.11", b"something else")])
    (folder / "other.deb").write_bytes(clash)
    locked["packages"].append({"name": "other", "version": "1", "architecture": "amd64", "source": "other",
                               "sha256": hashlib.sha256(clash).hexdigest(), "url": "u"})
    with pytest.raises(build_layer.LayerError, match="usr/bin/python3.11: shipped by both python3.11-minimal and other"):
        build_layer.build(locked, folder, tmp_path / "x.tar.gz", [], "65532")
