"""rust_combine reads llvm-cov's lcov export per layer, leaves out #[cfg(test)] modules,
and refuses profiles without their instrumented binary."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.metrics.coverage import rust_combine

SOURCE = '''pub fn add(a: u32, b: u32) -> u32 {
    a + b
}

pub fn unused() -> &'static str {
    "}"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds() {
        assert_eq!(add(1, 2), 3, "{}", "}");
    }
}

pub fn after_tests() {}
'''

LCOV = '''SF:./layers/layer1_alpha/rust/src/lib.rs
DA:1,2
DA:2,2
DA:3,2
DA:5,0
DA:6,0
DA:7,0
DA:14,1
DA:15,1
DA:16,1
DA:19,0
end_of_record
SF:././layers/layer1_alpha/rust/src/lib.rs
DA:5,4
end_of_record
SF:./rust/wire/src/lib.rs
DA:1,9
end_of_record
'''


def test_test_module_lines_end_at_the_matching_brace() -> None:
    assert rust_combine.test_module_lines(SOURCE) == set(range(9, 18))


def test_parse_lcov_normalizes_paths_and_keeps_the_highest_count() -> None:
    files = rust_combine.parse_lcov(LCOV)
    assert sorted(files) == ["layers/layer1_alpha/rust/src/lib.rs", "rust/wire/src/lib.rs"]
    assert files["layers/layer1_alpha/rust/src/lib.rs"][5] == 4


def test_layer_figures_count_own_sources_without_tests(tmp_path: Path) -> None:
    source = tmp_path / "layers/layer1_alpha/rust/src/lib.rs"
    source.parent.mkdir(parents=True)
    source.write_text(SOURCE)
    figures = rust_combine.layer_figures("layer1", rust_combine.parse_lcov(LCOV), tmp_path)
    # Lines 1-3 and 5 ran, 6, 7 and 19 did not; 14-16 are the test module; wire is not layer1's.
    assert figures == {"lines": 7, "covered": 4, "coverage_percent": 57.14, "files": 1,
                       "test_module_lines_excluded": 3}
    assert rust_combine.layer_figures("layer2", rust_combine.parse_lcov(LCOV), tmp_path)["lines"] == 0


def test_find_tests_groups_profiles_by_layer(tmp_path: Path) -> None:
    data, bins = tmp_path / "data", tmp_path / "bin"
    for test in ("alpha_core_test", "alpha_wasm_test"):
        profile = data / "layers/layer1_alpha" / test / "test.outputs/outputs.zip" / f"{test}-7.profraw"
        profile.parent.mkdir(parents=True)
        profile.write_bytes(b"raw")
        (bins / "layers/layer1_alpha").mkdir(parents=True, exist_ok=True)
        (bins / "layers/layer1_alpha" / test).write_bytes(b"elf")
    other = data / "tools/rust/tests/checksum_test/test.outputs/checksum_test-1.profraw"
    other.parent.mkdir(parents=True)
    other.write_bytes(b"raw")
    layers = rust_combine.find_tests(data, bins)
    assert list(layers) == ["layer1"]
    assert layers["layer1"].labels == ["//layers/layer1_alpha:alpha_core_test", "//layers/layer1_alpha:alpha_wasm_test"]
    assert len(layers["layer1"].profiles) == 2
    (bins / "layers/layer1_alpha/alpha_wasm_test").unlink()
    with pytest.raises(rust_combine.BadInput, match="no instrumented test binary"):
        rust_combine.find_tests(data, bins)


def test_no_profiles_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = rust_combine.main(["--data-dir", str(tmp_path), "--bin-dir", str(tmp_path), "--workspace", str(tmp_path),
                                "--llvm-profdata", "llvm-profdata-14", "--llvm-cov", "llvm-cov-14",
                                "--out", str(tmp_path / "out.json")])
    assert status == 2
    assert "no .profraw" in capsys.readouterr().err
