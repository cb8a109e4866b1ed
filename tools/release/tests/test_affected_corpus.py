"""The mutation corpus (affected_corpus.py) as a test: 0 false negatives, bounded false positives."""

from __future__ import annotations

import os
import pathlib

import affected_corpus


def test_every_mutation_kind_is_exact_or_within_its_bound(tmp_path: pathlib.Path) -> None:
    # Short path: Bazel's server socket must stay under the Unix path limit.
    workdir = pathlib.Path(os.environ.get("TEST_TMPDIR") or tmp_path) / "cor"
    rows, ok = affected_corpus.run(workdir)
    print(affected_corpus.table(rows))
    assert len(rows) >= 17
    assert not [r["kind"] for r in rows if r["false_negatives"]], affected_corpus.table(rows)
    assert ok, affected_corpus.table(rows)
