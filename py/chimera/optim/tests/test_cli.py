"""`python -m chimera.optim`: progress lines, a result, exit 2 on bad input."""

import pytest

from chimera.optim.__main__ import main


def test_run_prints_progress_and_result(capsys):
    assert main(["--strategy", "snes", "--function", "sphere", "--dim", "3", "--generations", "40",
                 "--progress-every", "20"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines[:2]] == ["20", "40"]
    assert "evaluations/s" in lines[0]
    assert lines[-1].startswith("best ") and "after 280 evaluations" in lines[-1]


@pytest.mark.parametrize("argv", [["--dim", "0"], ["--strategy", "simulated-annealing"], ["--generations", "x"]])
def test_bad_arguments_exit_2_with_one_message(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err
