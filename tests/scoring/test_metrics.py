"""Metrics on small cases worked out by hand (or by an independent computation)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import ks_2samp

from fintune.evaluation import (
    classification_metrics, compute_metrics, metric_mode, primary_metric, regression_metrics,
)


def one_hot_probs(pred: list[int], k: int) -> np.ndarray:
    """Probabilities whose argmax is ``pred``: 0.7 on the predicted class, the rest shared."""
    probs = np.full((len(pred), k), 0.3 / (k - 1))
    probs[np.arange(len(pred)), pred] = 0.7
    return probs


def assert_plain_json(value: object) -> None:
    """Only built-in types all the way down: numpy scalars would break other code's json."""
    if isinstance(value, dict):
        assert all(isinstance(key, str) for key in value)
        for item in value.values():
            assert_plain_json(item)
    elif isinstance(value, list):
        for item in value:
            assert_plain_json(item)
    else:
        assert value is None or type(value) in (int, float, str, bool), type(value)


LABELS3 = ["neg", "neu", "pos"]
# Confusion matrix (rows true): [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
Y3 = np.array([0, 0, 0, 1, 1, 2])
PRED3 = [0, 0, 1, 1, 2, 2]


def test_perfect_classifier_scores_one_everywhere() -> None:
    y = np.array([0, 1, 2, 1, 0])
    m = classification_metrics(y, one_hot_probs(list(y), 3), LABELS3)
    for key in ("accuracy", "macro_precision", "macro_recall", "macro_f1",
                "weighted_precision", "weighted_recall", "weighted_f1"):
        assert m[key] == pytest.approx(1.0), key
    assert m["confusion_matrix"]["matrix"] == [[2, 0, 0], [0, 2, 0], [0, 0, 1]]
    assert "roc_auc" not in m  # three classes: no binary metrics


def test_known_confusion_matrix_and_averages() -> None:
    m = classification_metrics(Y3, one_hot_probs(PRED3, 3), LABELS3)
    assert m["confusion_matrix"] == {"labels": LABELS3,
                                     "matrix": [[2, 1, 0], [0, 1, 1], [0, 0, 1]]}
    assert m["n"] == 6
    assert m["accuracy"] == pytest.approx(4 / 6)
    # Per class, by hand: precision = diag / column sum, recall = diag / row sum.
    assert m["per_class"]["neg"] == pytest.approx(
        {"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert m["per_class"]["neu"] == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert m["per_class"]["pos"] == pytest.approx(
        {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})
    assert m["macro_precision"] == pytest.approx((1.0 + 0.5 + 0.5) / 3)
    assert m["macro_recall"] == pytest.approx((2 / 3 + 0.5 + 1.0) / 3)
    assert m["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert m["weighted_precision"] == pytest.approx((3 * 1.0 + 2 * 0.5 + 1 * 0.5) / 6)
    assert m["weighted_recall"] == pytest.approx(4 / 6)  # weighted recall equals accuracy
    assert m["weighted_f1"] == pytest.approx((3 * 0.8 + 2 * 0.5 + 1 * 2 / 3) / 6)


def test_label_absent_from_y_true_still_counted() -> None:
    # "pos" never occurs in y_true but is predicted once (a false positive).
    y = np.array([0, 0, 1, 1])
    m = classification_metrics(y, one_hot_probs([0, 2, 1, 1], 3), LABELS3)
    assert m["confusion_matrix"]["labels"] == LABELS3
    assert m["confusion_matrix"]["matrix"] == [[1, 0, 1], [0, 2, 0], [0, 0, 0]]
    assert m["per_class"]["pos"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    # The absent class counts in the macro average (zero_division=0)...
    assert m["macro_recall"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    # ...but has no weight in the weighted one.
    assert m["weighted_recall"] == pytest.approx(3 / 4)


def test_binary_auc_ks_gini_on_tiny_case() -> None:
    y = np.array([0, 0, 1, 1])
    p1 = np.array([0.1, 0.4, 0.35, 0.8])
    m = classification_metrics(y, np.column_stack([1 - p1, p1]), ["good", "bad"])
    # AUC = share of (positive, negative) pairs ranked correctly: 3 of 4.
    assert m["roc_auc"] == pytest.approx(0.75)
    assert m["gini"] == pytest.approx(0.5)
    # Ranked by score: P, N, P, N -> AP = 0.5 * 1 + 0.5 * 2/3.
    assert m["pr_auc"] == pytest.approx(0.5 + 0.5 * 2 / 3)
    # KS by hand: at threshold 0.8 TPR - FPR = 0.5 - 0; at 0.35 it is 1 - 0.5.
    assert m["ks"] == pytest.approx(0.5)
    assert m["positive_label"] == "bad"


def test_ks_matches_two_sample_ks_statistic() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=200)
    p1 = np.clip(rng.normal(0.4 + 0.2 * y, 0.15), 0, 1)
    m = classification_metrics(y, np.column_stack([1 - p1, p1]), ["0", "1"])
    expected = ks_2samp(p1[y == 1], p1[y == 0]).statistic
    assert m["ks"] == pytest.approx(expected)
    assert 0.2 < m["ks"] < 1.0  # the classes do separate: not a degenerate 0 or 1


def test_single_class_gives_none_auc_not_crash() -> None:
    y = np.array([1, 1, 1])
    p1 = np.array([0.9, 0.2, 0.6])
    m = classification_metrics(y, np.column_stack([1 - p1, p1]), ["no", "yes"])
    assert {key: m[key] for key in ("roc_auc", "pr_auc", "ks", "gini")} == dict.fromkeys(
        ("roc_auc", "pr_auc", "ks", "gini"))
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["confusion_matrix"]["matrix"] == [[0, 0], [1, 2]]
    json.dumps(m, allow_nan=False)


def test_classification_output_is_plain_json() -> None:
    y = np.array([0, 1, 1, 0, 1])
    p1 = np.array([0.2, 0.7, 0.4, 0.3, 0.9], dtype=np.float32)
    m = compute_metrics("classification", y, np.column_stack([1 - p1, p1]), ["a", "b"])
    assert_plain_json(m)
    assert json.loads(json.dumps(m, allow_nan=False)) == m


def test_compute_metrics_names_classes_by_index_without_label_names() -> None:
    m = compute_metrics("classification", Y3, one_hot_probs(PRED3, 3), None)
    assert m["confusion_matrix"]["labels"] == ["0", "1", "2"]
    assert set(m["per_class"]) == {"0", "1", "2"}


def test_regression_numbers_by_hand() -> None:
    m = regression_metrics(np.array([1.0, 2.0, 3.0, 4.0]), np.array([[1.0], [2.0], [3.0], [5.0]]))
    # Errors 0, 0, 0, 1; y mean 2.5 so the total sum of squares is 5.
    assert m == pytest.approx({"mse": 0.25, "rmse": 0.5, "mae": 0.25, "r2": 1 - 1 / 5, "n": 4})
    assert_plain_json(m)
    assert type(m["n"]) is int


def test_regression_single_row_r2_is_none() -> None:
    m = compute_metrics("regression", np.array([2.0]), np.array([3.0]), None)
    assert m["r2"] is None
    assert m["mse"] == pytest.approx(1.0)
    json.dumps(m, allow_nan=False)


@pytest.mark.parametrize("call", [
    lambda: classification_metrics(np.array([0, 1]), np.ones((2, 3)) / 3, ["a", "b"]),
    lambda: classification_metrics(np.array([0, 2]), np.ones((2, 2)) / 2, ["a", "b"]),
    lambda: classification_metrics(np.array([0, 1, 1]), np.ones((2, 2)) / 2, ["a", "b"]),
    lambda: classification_metrics(np.array([], dtype=int), np.ones((0, 2)), ["a", "b"]),
    lambda: classification_metrics(np.array([0.5, 1.0]), np.ones((2, 2)) / 2, ["a", "b"]),
    lambda: regression_metrics(np.zeros(3), np.zeros((3, 2))),
    lambda: compute_metrics("ranking", np.zeros(3), np.zeros(3), None),
], ids=["k-mismatch", "index-out-of-range", "n-mismatch", "empty", "non-integer-labels",
        "multi-output-regression", "unknown-task"])
def test_bad_input_raises_value_error(call) -> None:
    with pytest.raises(ValueError):
        call()


def test_primary_metric_names_a_metric_that_exists() -> None:
    assert primary_metric("classification") == ("weighted_f1", "max")
    assert primary_metric("regression") == ("mse", "min")
    cls = compute_metrics("classification", Y3, one_hot_probs(PRED3, 3), LABELS3)
    reg = compute_metrics("regression", np.array([1.0, 2.0]), np.array([1.5, 2.0]), None)
    assert isinstance(cls[primary_metric("classification")[0]], float)
    assert isinstance(reg[primary_metric("regression")[0]], float)
    with pytest.raises(ValueError):
        primary_metric("ranking")


@pytest.mark.parametrize("name", ["loss", "eval_loss", "val_loss", "mse", "rmse", "mae",
                                  "brier", "brier_score", "log_loss", "mean_absolute_error"])
def test_metric_mode_min_for_losses_and_errors(name: str) -> None:
    assert metric_mode(name) == "min"


@pytest.mark.parametrize("name", ["accuracy", "weighted_f1", "macro_recall", "roc_auc",
                                  "pr_auc", "ks", "gini", "r2", "neg_mean_squared_error"])
def test_metric_mode_max_for_scores(name: str) -> None:
    assert metric_mode(name) == "max"


def test_brier_score_by_hand() -> None:
    from fintune.evaluation import classification_metrics

    probs = np.array([[0.2, 0.8], [0.6, 0.4], [0.9, 0.1], [0.5, 0.5]])
    m = classification_metrics(np.array([1, 1, 0, 0]), probs, ["good", "bad"])
    # (0.2^2 + 0.6^2 + 0.1^2 + 0.5^2) / 4
    assert m["brier"] == pytest.approx((0.04 + 0.36 + 0.01 + 0.25) / 4)
