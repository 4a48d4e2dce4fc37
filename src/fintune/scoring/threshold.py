"""Decision thresholds for binary tasks, chosen on validation data.

A credit or fraud model's default cut-off (argmax, i.e. 0.5) rarely matches the business
question; these rules pick the probability above which the positive class is predicted.
"""

from __future__ import annotations

import numpy as np

NEVER = 1.0 + 1e-9  # a threshold no probability reaches: predict no positives


def _sweep(y_true: np.ndarray, p_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """For each distinct probability t (descending): t, true positives and false positives at p >= t."""
    p = np.asarray(p_pos, dtype=np.float64).reshape(-1)
    y = np.asarray(y_true).reshape(-1) == 1
    order = np.argsort(-p, kind="stable")
    p, y = p[order], y[order]
    tp, fp = np.cumsum(y), np.cumsum(~y)
    last = np.r_[np.nonzero(np.diff(p))[0], len(p) - 1]  # last index of each group of equal p
    return p[last], tp[last], fp[last], int(y.sum())


def choose_threshold(y_true: np.ndarray, p_pos: np.ndarray, rule: str, *, target_recall: float = 0.8,
                     cost_false_negative: float = 1.0, cost_false_positive: float = 1.0) -> float:
    """The threshold on P(positive) for ``rule``: ``max_f1``, ``recall`` (the highest
    threshold that reaches ``target_recall``) or ``cost`` (least total cost of errors)."""
    ts, tp, fp, positives = _sweep(y_true, p_pos)
    if rule == "max_f1":
        f1 = 2 * tp / np.maximum(tp + fp + positives, 1)  # 2TP / (2TP + FP + FN), FN = P - TP
        return float(ts[int(np.argmax(f1))])
    if rule == "recall":
        reached = np.nonzero(tp >= target_recall * positives)[0]
        return float(ts[reached[0]]) if len(reached) else float(ts[-1])
    if rule == "cost":
        costs = np.r_[cost_false_negative * positives,  # the NEVER threshold: every positive missed
                      cost_false_negative * (positives - tp) + cost_false_positive * fp]
        best = int(np.argmin(costs))
        return NEVER if best == 0 else float(ts[best - 1])
    raise ValueError(f"unknown threshold rule '{rule}'")
