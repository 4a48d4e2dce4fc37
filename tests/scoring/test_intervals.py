"""Bootstrap intervals: they hold the point estimate, shrink with more rows, and reach the
metrics file, the report and the summary."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from fintune.scoring.intervals import _auc, bootstrap_intervals, format_interval


def binary(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p1 = np.clip(0.5 + (y - 0.5) * 0.4 + rng.normal(0, 0.25, n), 0.01, 0.99)
    return y, np.stack([1 - p1, p1], axis=1)


def test_intervals_hold_the_estimate_and_shrink_with_rows() -> None:
    widths = []
    for n in (150, 2400):
        y, probs = binary(n)
        result = bootstrap_intervals("classification", y, probs)
        bounds = result["metrics"]
        pred = probs.argmax(1)
        for name, value in (("accuracy", accuracy_score(y, pred)), ("roc_auc", roc_auc_score(y, probs[:, 1])),
                            ("weighted_f1", f1_score(y, pred, average="weighted")),
                            ("macro_f1", f1_score(y, pred, average="macro"))):
            assert bounds[name][0] <= value <= bounds[name][1], (name, value, bounds[name])
        widths.append(bounds["roc_auc"][1] - bounds["roc_auc"][0])
    # The interval narrows roughly as 1/sqrt(n): 16x the rows, about a quarter of the width.
    assert widths[1] < widths[0] / 2.5
    assert result["level"] == 0.95 and result["resamples"] == 1000


def test_rank_auc_matches_sklearn_with_ties() -> None:
    y = np.array([[0, 1, 1, 0, 1, 0]])
    score = np.array([[0.2, 0.8, 0.5, 0.5, 0.9, 0.1]])
    assert _auc(y, score)[0] == pytest.approx(roc_auc_score(y[0], score[0]))


def test_regression_and_degenerate_splits() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(-10, 1, 300)
    pred = y + rng.normal(0, 0.5, 300)
    bounds = bootstrap_intervals("regression", y, pred)["metrics"]
    mse = float(np.mean((pred - y) ** 2))
    assert bounds["mse"][0] <= mse <= bounds["mse"][1] and 0 < bounds["r2"][0] < bounds["r2"][1] < 1
    assert bootstrap_intervals("classification", np.array([1]), np.array([[0.2, 0.8]]))["metrics"] == {}
    assert bootstrap_intervals("generation", ["a"], ["a"])["metrics"] == {}
    # One class only: accuracy has an interval, ROC-AUC none.
    only = bootstrap_intervals("classification", np.ones(20, dtype=int), np.tile([0.3, 0.7], (20, 1)))["metrics"]
    assert "roc_auc" not in only and only["accuracy"] == [1.0, 1.0]
    assert format_interval(0.5, [0.4, 0.6]) == "0.5000 [0.4000, 0.6000]" and format_interval(None, None) == ""
