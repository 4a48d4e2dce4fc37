"""Metrics for classification and regression, as plain JSON-ready dicts.

Every headline number is a flat float at the top level (``weighted_f1``, ``mse``...) so the
training loop and early stopping can pick one by name. All values are plain Python types:
numpy scalars would break ``json.dumps``, and non-finite floats (an undefined metric) become
``None`` because NaN is not valid JSON.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score, average_precision_score, confusion_matrix, mean_absolute_error,
    mean_squared_error, precision_recall_fscore_support, r2_score, roc_auc_score, roc_curve,
)

from fintune.scoring.calibration import expected_calibration_error
from fintune.scoring.multilabel import multi_label_metrics
from fintune.tasks import TASKS, task_of

SCORED = ("class", "value", "labels")  # the answers scored here; tags and texts have metrics of their own

# Name parts that mark a metric where lower is better; anything else is "higher is better".
_LOWER_IS_BETTER = frozenset({
    "loss", "mse", "rmse", "mae", "mape", "msle", "rmsle", "brier", "ece", "error", "err", "nll",
    "logloss", "perplexity", "ppl", "hinge", "entropy",
})


def _num(value: Any) -> float | None:
    """A plain float, or None where the metric is undefined (NaN/inf are not valid JSON)."""
    value = float(value)
    return value if math.isfinite(value) else None


def _check_n(y_true: np.ndarray, n_outputs: int) -> None:
    if y_true.shape[0] == 0:
        raise ValueError("cannot compute metrics on an empty set")
    if y_true.shape[0] != n_outputs:
        raise ValueError(f"y_true has {y_true.shape[0]} rows but outputs have {n_outputs}")


def _labels_as_indices(y_true: np.ndarray, k: int) -> np.ndarray:
    """Class indices in ``[0, k)``; anything else means labels and outputs disagree."""
    y = np.asarray(y_true).reshape(-1)
    if y.dtype == np.bool_:
        y = y.astype(np.int64)
    if not np.issubdtype(y.dtype, np.number) or not np.all(np.mod(y, 1) == 0):
        raise ValueError("classification y_true must hold integer class indices")
    y = y.astype(np.int64)
    if y.min() < 0 or y.max() >= k:
        raise ValueError(f"y_true has class indices outside [0, {k}) for {k} label names")
    return y


def _binary_metrics(y_true: np.ndarray, scores: np.ndarray) -> dict[str, float | None]:
    """ROC AUC, PR AUC, KS and Gini of the positive-class score.

    With a single class in ``y_true`` none of these is defined, so all are None rather than
    sklearn's warning-plus-NaN (or exception, for ROC AUC).
    """
    positive = y_true == 1
    # Brier score: mean squared error of the probability; defined with one class present too.
    brier = _num(np.mean((np.asarray(scores, dtype=np.float64) - positive) ** 2))
    if positive.all() or not positive.any():
        return {"roc_auc": None, "pr_auc": None, "ks": None, "gini": None, "brier": brier}
    auc = float(roc_auc_score(positive, scores))
    fpr, tpr, _ = roc_curve(positive, scores)
    return {
        "roc_auc": _num(auc),
        "pr_auc": _num(average_precision_score(positive, scores)),
        # KS: the largest gap between the positive and negative score distributions,
        # which is the best TPR - FPR over all thresholds.
        "ks": _num(np.max(tpr - fpr)),
        "gini": _num(2.0 * auc - 1.0),
        "brier": brier,
    }


def classification_metrics(y_true: np.ndarray, probs: np.ndarray,
                           label_names: list[str], threshold: float | None = None) -> dict[str, Any]:
    """Accuracy, macro/weighted P/R/F1, per-class scores and the confusion matrix.

    ``y_true`` holds class indices into ``label_names``; ``probs`` is ``(n, k)`` with one
    column per label and the prediction is its argmax. Every label counts, present in
    ``y_true`` or not (zero_division=0), so runs on different subsets stay comparable.
    With two labels the positive class is index 1 and the binary metrics are added.
    """
    probs = np.asarray(probs, dtype=np.float64)
    k = len(label_names)
    if probs.ndim != 2 or probs.shape[1] != k:
        raise ValueError(f"probs must have shape (n, {k}) for {k} label names, got {probs.shape}")
    _check_n(np.asarray(y_true).reshape(-1), probs.shape[0])
    y = _labels_as_indices(y_true, k)
    # A decision threshold (binary only) replaces argmax: positive when P(positive) >= threshold.
    pred = (probs[:, 1] >= threshold).astype(np.int64) if threshold is not None and k == 2 else probs.argmax(axis=1)
    labels = list(range(k))

    def prf(average: str | None) -> tuple[Any, Any, Any, Any]:
        return precision_recall_fscore_support(y, pred, labels=labels, average=average,
                                               zero_division=0)

    metrics: dict[str, Any] = {"accuracy": _num(accuracy_score(y, pred))}
    for average in ("macro", "weighted"):
        precision, recall, f1, _ = prf(average)
        metrics[f"{average}_precision"] = _num(precision)
        metrics[f"{average}_recall"] = _num(recall)
        metrics[f"{average}_f1"] = _num(f1)
    metrics["n"] = int(y.shape[0])
    # Probabilities can be over-confident while the argmax is right: ECE says by how much.
    metrics["ece"] = _num(expected_calibration_error(y, probs))

    precision, recall, f1, support = prf(None)
    metrics["per_class"] = {
        name: {"precision": _num(precision[i]), "recall": _num(recall[i]),
               "f1": _num(f1[i]), "support": int(support[i])}
        for i, name in enumerate(label_names)
    }
    matrix = confusion_matrix(y, pred, labels=labels)
    metrics["confusion_matrix"] = {"labels": [str(name) for name in label_names],
                                   "matrix": [[int(c) for c in row] for row in matrix]}
    if k == 2:
        metrics.update(_binary_metrics(y, probs[:, 1]))
        metrics["positive_label"] = str(label_names[1])
    return metrics


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """MSE, RMSE, MAE and R² of predictions ``(n,)`` or ``(n, 1)`` against ``y_true``.

    R² is None when it is undefined (fewer than two rows). When the target takes both
    signs (returns), ``directional_accuracy`` is the share of rows whose sign is right.
    """
    y = np.asarray(y_true, dtype=np.float64)
    pred = np.asarray(y_pred, dtype=np.float64)
    for name, array in (("y_true", y), ("predictions", pred)):
        if array.ndim > 2 or (array.ndim == 2 and array.shape[1] != 1):
            raise ValueError(f"regression {name} must have shape (n,) or (n, 1), got {array.shape}")
    y, pred = y.reshape(-1), pred.reshape(-1)
    _check_n(y, pred.shape[0])
    mse = float(mean_squared_error(y, pred))
    # sklearn returns NaN (with a warning) for R² on one row; say "undefined" instead.
    r2 = _num(r2_score(y, pred)) if y.shape[0] >= 2 else None
    out = {"mse": _num(mse), "rmse": _num(math.sqrt(mse)),
           "mae": _num(mean_absolute_error(y, pred)), "r2": r2, "n": int(y.shape[0])}
    if (y > 0).any() and (y < 0).any():
        # Returns: did the forecast get the sign right? (undefined for all-positive targets)
        out["directional_accuracy"] = _num(np.mean(np.sign(pred) == np.sign(y)))
    return out


def compute_metrics(task: str, y_true: np.ndarray, outputs: np.ndarray,
                    label_names: list[str] | None, threshold: Any = None) -> dict[str, Any]:
    """Metrics for ``task``: class probabilities ``(n, k)`` or regression predictions.

    For classification without ``label_names`` the classes are named by index ("0", "1"...).
    """
    answer = task_of(task).answer
    if answer not in SCORED:
        raise ValueError(f"compute_metrics scores classes and values; task {task!r} has its own metrics")
    if answer == "value":
        return regression_metrics(y_true, outputs)
    outputs = np.asarray(outputs)
    if answer == "labels":  # one probability per label; ``threshold``: one per label, or one for all
        names = label_names or [str(i) for i in range(outputs.shape[1])]
        return multi_label_metrics(y_true, outputs, names, threshold)
    if label_names is None:
        if outputs.ndim != 2:
            raise ValueError(f"classification outputs must have shape (n, k), got {outputs.shape}")
        label_names = [str(i) for i in range(outputs.shape[1])]
    metrics = classification_metrics(y_true, outputs, label_names, threshold)
    if task_of(task).none_labels:
        none = [i for i, name in enumerate(label_names) if name in task_of(task).none_labels]
        metrics.update(_micro_without(metrics["confusion_matrix"]["matrix"], none))
    if threshold is not None and len(label_names) == 2:
        metrics["threshold"] = float(threshold)
    return metrics


PRIMARY = {**{name: task.primary_metric for name, task in TASKS.items()},
           # Continued pretraining (not a task of a run config): the masked-token or
           # next-token loss on held-out text.
           "pretraining": ("loss", "min")}


def primary_metric(task: str) -> tuple[str, str]:
    """The default metric to select checkpoints by, and whether to ``max`` or ``min`` it."""
    if task not in PRIMARY:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(PRIMARY)}")
    return PRIMARY[task]


def metric_mode(name: str) -> str:
    """``"min"`` for losses and errors (``loss``, ``eval_loss``, ``rmse``, ``brier``...), else ``"max"``.

    Decided by the name's parts, so prefixed names such as ``val_mse`` or ``log_loss`` work;
    sklearn-style ``neg_*`` scores are negated errors, so higher is better.
    """
    lowered = name.lower()
    if lowered.startswith("neg_"):
        return "max"
    parts = set(re.split(r"[^a-z0-9]+", lowered))
    return "min" if parts & _LOWER_IS_BETTER else "max"


def _micro_without(matrix: list[list[int]], none: list[int]) -> dict[str, Any]:
    """Micro precision, recall and F1 over every label but ``none`` (the "no relation" label):
    a right "no relation" earns nothing, a wrong relation costs precision, a missed one recall."""
    cm = np.asarray(matrix, dtype=np.int64)
    keep = [i for i in range(cm.shape[0]) if i not in none]
    tp = int(cm[keep, keep].sum())
    predicted, actual = int(cm[:, keep].sum()), int(cm[keep, :].sum())
    precision = tp / predicted if predicted else 0.0
    recall = tp / actual if actual else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"micro_precision": precision, "micro_recall": recall, "micro_f1": f1}
