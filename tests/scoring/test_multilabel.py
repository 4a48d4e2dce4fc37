"""Multi-label metrics against scikit-learn, and the thresholds tuned on validation."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, hamming_loss

from fintune.scoring.metrics import compute_metrics
from fintune.scoring.multilabel import MIN_POSITIVES, chosen_thresholds, decide, tune_thresholds

Y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]], dtype=np.float32)
P = np.array([[0.9, 0.2, 0.6], [0.3, 0.7, 0.1], [0.8, 0.4, 0.2], [0.1, 0.2, 0.3]])


def test_the_metrics_equal_scikit_learn_at_the_thresholds_given() -> None:
    cuts = [0.5, 0.35, 0.5]
    metrics = compute_metrics("multi_label", Y, P, ["a", "b", "c"], cuts)
    pred = decide(P, cuts)
    assert pred.tolist() == [[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]]
    assert metrics["micro_f1"] == pytest.approx(1.0) and metrics["subset_accuracy"] == pytest.approx(1.0)
    at_half = compute_metrics("multi_label", Y, P, ["a", "b", "c"])
    half = decide(P, None)
    for average in ("micro", "macro"):
        assert at_half[f"{average}_f1"] == pytest.approx(f1_score(Y, half, average=average, zero_division=0))
    assert at_half["hamming_loss"] == pytest.approx(hamming_loss(Y, half))
    # The row with no label, predicted with none, counts as right in samples F1.
    assert at_half["samples_f1"] == pytest.approx(f1_score(Y, half, average="samples", zero_division=1))
    b = at_half["per_label"]["b"]
    assert {k: b[k] for k in ("precision", "recall", "support", "threshold")} == {
        "precision": 1.0, "recall": 0.5, "support": 2, "threshold": 0.5}
    assert b["f1"] == pytest.approx(2 / 3) and b["pr_auc"] == pytest.approx(1.0) and 0 < b["ece"] < 1
    assert at_half["ece"] == pytest.approx(np.mean([s["ece"] for s in at_half["per_label"].values()]))


def test_a_label_tunes_its_own_threshold_only_with_enough_positives() -> None:
    rng = np.random.default_rng(0)
    n = 400
    y = np.stack([rng.random(n) < 0.3, np.zeros(n, dtype=bool)], axis=1).astype(np.float32)
    y[: MIN_POSITIVES - 1, 1] = 1  # too rare to tune on
    # Label 0's scores are shifted low: its best cut is well under 0.5.
    p = np.stack([np.where(y[:, 0] == 1, 0.3, 0.05) + rng.normal(0, 0.03, n), rng.random(n)], axis=1)
    per_label, best_global = tune_thresholds(y, p)
    assert per_label[0] < 0.3 and per_label[1] == best_global
    assert chosen_thresholds("fixed", y, p) is None
    assert chosen_thresholds("global", y, p) == [best_global, best_global]
    assert chosen_thresholds("per_label", y, p) == per_label


def test_shapes_that_disagree_are_refused() -> None:
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        compute_metrics("multi_label", Y[:, :2], P, ["a", "b", "c"])
