"""The vendored published sets are byte-identical to the ones the checksums name."""

import hashlib
from pathlib import Path

HERE = Path(__file__).parent


def test_every_set_matches_its_checksum():
    lines = (HERE / "SHA256SUMS").read_text().split("\n")
    sums = dict(reversed(line.split()) for line in lines if line.strip())
    assert set(sums) == {"or3.json", "weibull_5k.json"}
    for name, expected in sums.items():
        assert hashlib.sha256((HERE / name).read_bytes()).hexdigest() == expected, name


def test_checksums_are_the_published_ones():
    # The figures the data's provider published beside the files (shared/data README).
    sums = (HERE / "SHA256SUMS").read_text()
    assert "d4a650189be979d2730a31c2de43efaf2c196f1e86d784848c24f5fee50a95b5  or3.json" in sums
    assert "505238319782a3c692f1ce4a58d5a9def7e4d05cd6803c39c12727bbcb8ec9b1  weibull_5k.json" in sums
