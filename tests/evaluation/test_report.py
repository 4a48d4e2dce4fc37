"""write_evaluation: the files it writes and what they contain."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fintune.evaluation import write_evaluation

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    assert len(data) > 1000, path  # a real plot, not just a header


def binary_case() -> tuple[np.ndarray, np.ndarray]:
    y = np.array([0, 0, 1, 1, 0, 1])
    p1 = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    return y, np.column_stack([1 - p1, p1])


def test_binary_classification_writes_all_files(tmp_path: Path) -> None:
    out = tmp_path / "eval" / "test"  # nested: write_evaluation creates the folder
    y, probs = binary_case()
    metrics = write_evaluation(out, "classification", y, probs, ["good", "bad"], "Credit test")

    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert_png(out / "confusion_matrix.png")
    assert_png(out / "roc_curve.png")
    assert_png(out / "calibration.png")
    assert not (out / "predicted_vs_true.png").exists()

    report = (out / "report.md").read_text()
    assert report.startswith("# Credit test\n")
    for key in ("accuracy", "weighted_f1", "roc_auc", "ks", "gini"):
        assert f"| {key} | {metrics[key]:.4f} |" in report, key
    assert "](confusion_matrix.png)" in report
    assert "](roc_curve.png)" in report
    assert "`bad`" in report  # the positive class is named


def test_report_has_per_class_and_confusion_tables(tmp_path: Path) -> None:
    y = np.array([0, 0, 0, 1, 1, 2])
    probs = np.eye(3)[[0, 0, 1, 1, 2, 2]]
    metrics = write_evaluation(tmp_path, "classification", y, probs,
                               ["neg", "neu", "pos|strong"], "Sentiment")
    report = (tmp_path / "report.md").read_text()
    # Per-class row for "neg": precision 1, recall 2/3, f1 0.8, support 3.
    assert "| neg | 1.0000 | 0.6667 | 0.8000 | 3 |" in report
    # Confusion rows (true class first), with the "|" in the label name escaped.
    assert "| neg | 2 | 1 | 0 |" in report
    assert "| pos\\|strong | 0 | 0 | 1 |" in report
    assert f"| macro_f1 | {metrics['macro_f1']:.4f} |" in report
    # Three classes: no ROC plot, and no link to one.
    assert not (tmp_path / "roc_curve.png").exists()
    assert "roc_curve.png" not in report
    assert_png(tmp_path / "confusion_matrix.png")


def test_single_class_binary_skips_roc_and_reports_na(tmp_path: Path) -> None:
    y = np.array([0, 0, 0])
    p1 = np.array([0.2, 0.7, 0.1])
    metrics = write_evaluation(tmp_path, "classification", y, np.column_stack([1 - p1, p1]),
                               ["no", "yes"], "One class")
    assert metrics["roc_auc"] is None
    assert json.loads((tmp_path / "metrics.json").read_text())["roc_auc"] is None
    assert not (tmp_path / "roc_curve.png").exists()
    assert "| roc_auc | n/a |" in (tmp_path / "report.md").read_text()
    assert_png(tmp_path / "confusion_matrix.png")


def test_regression_writes_scatter_and_metrics(tmp_path: Path) -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    pred = np.array([[1.0], [2.0], [3.0], [5.0]])
    metrics = write_evaluation(tmp_path, "regression", y, pred, None, "Returns")
    assert metrics["mse"] == pytest.approx(0.25)
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    assert_png(tmp_path / "predicted_vs_true.png")
    assert not (tmp_path / "confusion_matrix.png").exists()
    report = (tmp_path / "report.md").read_text()
    for line in ("| mse | 0.2500 |", "| rmse | 0.5000 |", "| mae | 0.2500 |", "| r2 | 0.8000 |",
                 "| n | 4 |", "](predicted_vs_true.png)"):
        assert line in report, line
    assert "Per class" not in report


def test_rerun_removes_plots_of_the_earlier_run(tmp_path: Path) -> None:
    y, probs = binary_case()
    write_evaluation(tmp_path, "classification", y, probs, ["good", "bad"], "First")
    assert (tmp_path / "roc_curve.png").exists()
    write_evaluation(tmp_path, "regression", np.array([1.0, 2.0]), np.array([1.0, 2.5]), None,
                     "Second")
    assert not (tmp_path / "roc_curve.png").exists()
    assert not (tmp_path / "confusion_matrix.png").exists()
    assert "mse" in json.loads((tmp_path / "metrics.json").read_text())


def test_bad_input_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "never"
    with pytest.raises(ValueError):
        write_evaluation(out, "classification", np.array([0, 5]), np.ones((2, 2)) / 2,
                         ["a", "b"], "Bad")
    assert not out.exists()
