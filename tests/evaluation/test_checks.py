"""The end-of-training summary's warnings and numbers: one class predicted, accuracy no
better than the majority class, a small split, the time, the next commands."""

from __future__ import annotations

from pathlib import Path

from fintune.console import duration
from fintune.evaluation.checks import majority_baseline, warnings_for


def split(matrix: list[list[int]], accuracy: float, labels=("good", "bad")) -> dict:
    return {"confusion_matrix": {"labels": list(labels), "matrix": matrix}, "accuracy": accuracy,
            "n": sum(map(sum, matrix))}


def test_one_class_and_below_majority_are_warned() -> None:
    metrics = {"validation": split([[70, 0], [30, 0]], 0.70), "test": split([[60, 10], [10, 20]], 0.80)}
    lines = warnings_for(metrics, ["validation", "test"])
    assert any("every validation prediction is 'good' (1 of 2 classes)" in line for line in lines)
    assert any("validation accuracy 0.700 is no better than always answering 'good' (0.700)" in line for line in lines)
    assert not any(line.startswith("test") or "every test" in line for line in lines)
    assert majority_baseline(metrics["test"]) == ("good", 0.7)


def test_a_small_split_is_warned_and_a_good_large_one_is_not() -> None:
    small = split([[40, 5], [5, 30]], 0.875)
    assert warnings_for({"test": small}, ["test"]) == [
        "test has 80 rows: its metrics can move by several points on other data; read the intervals"]
    assert warnings_for({"test": split([[400, 50], [50, 300]], 0.875)}, ["test"]) == []
    assert warnings_for({"test": {"mse": 0.1, "n": 500}}, ["test"]) == []  # regression: no classes to check


def test_durations_read_as_clock_time() -> None:
    assert duration(350.15) == "5:50" and duration(3725) == "1:02:05" and duration(0.4) == "0:00"


def test_the_summary_prints_warnings_baseline_time_and_next_steps(capsys, tmp_path: Path) -> None:
    from fintune.rundir import print_summary

    metrics = {"validation": split([[70, 0], [30, 0]], 0.70), "test": split([[66, 4], [24, 6]], 0.72),
               "training": {"train_seconds": 350.15}}
    print_summary(metrics, tmp_path / "run")
    err = capsys.readouterr().err
    assert "warning: every validation prediction is 'good'" in err
    assert "accuracy of always 'good'" in err and "0.7000" in err
    assert "trained in 5:50" in err
    assert f"fintune report {tmp_path / 'run'}" in err and f"fintune serve {tmp_path / 'run'}" in err
