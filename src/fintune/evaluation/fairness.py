"""Fairness across groups (fairlearn) and per-group thresholds as post-processing.

For a binary decision (approve / reject, flag / pass) the table gives, per group, the
selection rate (share predicted positive), accuracy, true and false positive rates and
the count; the gaps are fairlearn's demographic parity difference (largest gap in
selection rate) and equalized odds difference (largest gap in TPR or FPR).

Mitigation picks one threshold per group on fitting data (validation, never test) so that
every group gets the overall selection rate (``demographic_parity``) or the overall true
positive rate (``equal_opportunity``); the thresholds are plain numbers saved with the model.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from fintune.errors import FintuneError, needs
from fintune.scoring.groups import GroupSpec, GroupThresholds

Rule = Literal["demographic_parity", "equal_opportunity"]
RULES: tuple[str, ...] = ("demographic_parity", "equal_opportunity")
MIN_GROUP_ROWS = 10  # smaller groups keep the overall threshold: their rates are noise


def fairness_table(y_true: np.ndarray, y_pred: np.ndarray, groups: pd.Series) -> dict[str, Any]:
    """Per-group rates and the two gaps, for binary labels (1 = positive)."""
    with needs("trust", "fairness metrics"):
        from fairlearn.metrics import (
            MetricFrame, count, demographic_parity_difference, equalized_odds_difference,
            false_positive_rate, selection_rate, true_positive_rate,
        )
    from sklearn.metrics import accuracy_score

    frame = MetricFrame(
        metrics={"count": count, "selection_rate": selection_rate, "accuracy": accuracy_score,
                 "tpr": true_positive_rate, "fpr": false_positive_rate},
        y_true=y_true, y_pred=y_pred, sensitive_features=groups.to_numpy(),
    )
    by_group = {str(g): {k: _plain(v) for k, v in row.items()} for g, row in frame.by_group.iterrows()}
    return {
        "groups": by_group,
        "demographic_parity_difference": _plain(demographic_parity_difference(
            y_true, y_pred, sensitive_features=groups.to_numpy())),
        "equalized_odds_difference": _plain(equalized_odds_difference(
            y_true, y_pred, sensitive_features=groups.to_numpy())),
        "accuracy": _plain(float(np.mean(y_true == y_pred))),
    }


def _plain(value: Any) -> float | int | None:
    value = float(value)
    if not np.isfinite(value):
        return None
    return int(value) if value.is_integer() and abs(value) > 1 else value


def fit_group_thresholds(y_true: np.ndarray, scores: np.ndarray, values: pd.Series, spec: GroupSpec,
                         rule: str, default: float) -> GroupThresholds:
    """Thresholds that give every group the overall selection rate or true positive rate."""
    if rule not in RULES:
        raise FintuneError(f"unknown mitigation '{rule}'; use one of: {', '.join(RULES)}")
    spec = spec.resolve(values)
    groups = spec.labels(values).to_numpy()
    y, s = np.asarray(y_true), np.asarray(scores)
    overall = s >= default
    target = overall.mean() if rule == "demographic_parity" else overall[y == 1].mean()
    thresholds = {}
    for group in np.unique(groups):
        mine = groups == group
        pool = s[mine] if rule == "demographic_parity" else s[mine & (y == 1)]
        if mine.sum() < MIN_GROUP_ROWS or len(pool) == 0:
            thresholds[str(group)] = default
            continue
        # The score above which a `target` share of the group's pool lies.
        thresholds[str(group)] = float(np.quantile(pool, 1 - target, method="higher")) if target > 0 else 1.0
    return GroupThresholds(spec.column, spec.edges, rule, default, thresholds)
