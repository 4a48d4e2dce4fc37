"""Multi-label metrics and decision thresholds.

A label is predicted where its probability reaches its threshold. Thresholds are tuned on the
validation split, one per label (the F1-best cut among the observed probabilities) and one
global; a label too rare on validation to tune keeps the global one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, f1_score, hamming_loss, precision_recall_fscore_support

from fintune.scoring.calibration import as_two_class, expected_calibration_error

# Fewer validation rows holding a label than this: its own threshold would fit noise.
MIN_POSITIVES = 5
_GRID = np.round(np.arange(0.05, 0.951, 0.05), 2)


def _num(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def decide(probs: np.ndarray, thresholds: Sequence[float] | float | None) -> np.ndarray:
    """Rows of 0/1: a label holds where its probability reaches its threshold (0.5 without one)."""
    cut = np.asarray(0.5 if thresholds is None else thresholds, dtype=np.float64)
    return (np.asarray(probs, dtype=np.float64) >= cut).astype(np.int64)


def multi_label_metrics(y_true: np.ndarray, probs: np.ndarray, label_names: list[str],
                        thresholds: Sequence[float] | float | None = None) -> dict[str, Any]:
    """Micro, macro and samples F1 (with micro/macro precision and recall), subset accuracy,
    Hamming loss, the mean of the labels' calibration errors, and per label: precision, recall,
    F1, PR AUC, ECE (of its probability, as a binary classifier's), support and threshold."""
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    k = len(label_names)
    if p.ndim != 2 or p.shape[1] != k or y.shape != p.shape:
        raise ValueError(f"multi-label labels and probabilities must both have shape (n, {k}); got "
                         f"{y.shape} and {p.shape}")
    if y.shape[0] == 0:
        raise ValueError("cannot compute metrics on an empty set")
    truth, pred = (y >= 0.5).astype(np.int64), decide(p, thresholds)
    metrics: dict[str, Any] = {}
    for average in ("micro", "macro", "samples"):
        # A row with no label, predicted with none, is right: samples F1 counts it as 1.
        precision, recall, f1, _ = precision_recall_fscore_support(truth, pred, average=average,
                                                                   zero_division=1 if average == "samples" else 0)
        metrics[f"{average}_f1"] = _num(f1)
        metrics[f"{average}_precision"], metrics[f"{average}_recall"] = _num(precision), _num(recall)
    metrics["subset_accuracy"] = _num(np.mean((truth == pred).all(axis=1)))
    metrics["hamming_loss"] = _num(hamming_loss(truth, pred))
    metrics["n"] = int(truth.shape[0])
    cuts = np.broadcast_to(np.asarray(0.5 if thresholds is None else thresholds, dtype=np.float64), (k,))
    precision, recall, f1, support = precision_recall_fscore_support(truth, pred, average=None, zero_division=0)
    eces = [expected_calibration_error(truth[:, j], as_two_class(p[:, j])) for j in range(k)]
    metrics["ece"] = _num(np.mean(eces))
    metrics["per_label"] = {
        name: {"precision": _num(precision[j]), "recall": _num(recall[j]), "f1": _num(f1[j]),
               "pr_auc": _num(average_precision_score(truth[:, j], p[:, j])) if 0 < truth[:, j].sum() < len(truth)
               else None,
               "ece": _num(eces[j]), "support": int(support[j]), "threshold": float(cuts[j])}
        for j, name in enumerate(label_names)}
    return metrics


def tune_thresholds(y_true: np.ndarray, probs: np.ndarray) -> tuple[list[float], float]:
    """Per-label thresholds and the global one, each the F1-best on ``probs`` (validation)."""
    truth = (np.asarray(y_true) >= 0.5).astype(np.int64)
    p = np.asarray(probs, dtype=np.float64)
    scores = [f1_score(truth, (p >= t).astype(np.int64), average="micro", zero_division=0) for t in _GRID]
    best_global = float(_GRID[int(np.argmax(scores))])
    per_label = []
    for j in range(truth.shape[1]):
        if truth[:, j].sum() < MIN_POSITIVES:
            per_label.append(best_global)
            continue
        label_scores = [f1_score(truth[:, j], (p[:, j] >= t).astype(np.int64), zero_division=0) for t in _GRID]
        per_label.append(float(_GRID[int(np.argmax(label_scores))]))
    return per_label, best_global


def bce_loss(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Mean binary cross-entropy over every (row, label)."""
    y = np.asarray(y_true, dtype=np.float64)
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1 - 1e-12)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def chosen_thresholds(mode: str, y_true: np.ndarray, probs: np.ndarray) -> list[float] | None:
    """``decision.label_thresholds``: per label, one global, or None (0.5 for every label)."""
    if mode == "fixed":
        return None
    per_label, best_global = tune_thresholds(y_true, probs)
    return per_label if mode == "per_label" else [best_global] * len(per_label)
