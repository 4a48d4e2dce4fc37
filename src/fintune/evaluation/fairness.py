"""Fairness across groups (fairlearn) and per-group thresholds as post-processing.

For a binary decision (approve / reject, flag / pass) the table gives, per group, the
selection rate (share predicted positive), accuracy, true and false positive rates and
the count; the gaps are fairlearn's demographic parity difference (largest gap in
selection rate) and equalized odds difference (largest gap in TPR or FPR).

Mitigation is fairlearn's ``ThresholdOptimizer`` fitted on validation scores (never test):
per-group, randomized thresholds meeting demographic parity, equalized odds or equal true
positive rates; the fitted rules are plain numbers saved with the model (no pickle).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from fintune.errors import FintuneError, needs
from fintune.scoring.groups import FairThresholds, GroupSpec, GroupThresholds  # noqa: F401  (GroupThresholds: older models)

RULES: tuple[str, ...] = ("demographic_parity", "equalized_odds", "true_positive_rate_parity")
ALIASES = {"equal_opportunity": "true_positive_rate_parity"}  # the name fintune used before
# Below these, a group's rates on the fitting data are noise and its thresholds will not hold.
TRUSTED_ROWS, TRUSTED_POSITIVES = 30, 5


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
                         rule: str, default: float, seed: int = 0) -> FairThresholds:
    """fairlearn's ``ThresholdOptimizer`` (Hardt et al. 2016) on fitting data's scores:
    randomized per-group thresholds that meet ``rule`` (demographic parity, equalized odds,
    or equal true positive rates) at the best accuracy, turned into plain numbers."""
    rule = ALIASES.get(rule, rule)
    if rule not in RULES:
        raise FintuneError(f"unknown mitigation '{rule}'; use one of: {', '.join(RULES)}")
    with needs("trust", "fairness mitigation"):
        from fairlearn.postprocessing import ThresholdOptimizer
    spec = spec.resolve(values)
    groups = spec.labels(values).to_numpy()
    s = np.asarray(scores, dtype=float).reshape(-1, 1)
    optimizer = ThresholdOptimizer(estimator=_Scores().fit(s, y_true), constraints=rule, prefit=True,
                                   predict_method="predict", objective="accuracy_score")
    optimizer.fit(s, np.asarray(y_true), sensitive_features=groups)
    fitted = {str(group): _rule(rule_) for group, rule_ in optimizer.interpolated_thresholder_.interpolation_dict.items()}
    return FairThresholds(spec.column, spec.edges, rule, default, fitted, seed)


def small_groups(values: pd.Series, y_true: np.ndarray, spec: GroupSpec) -> dict[str, int]:
    """Groups of the fitting data too small for their rates, and so their thresholds, to hold
    on new data: fewer than :data:`TRUSTED_ROWS` rows or :data:`TRUSTED_POSITIVES` positives."""
    groups = spec.resolve(values).labels(values).to_numpy()
    y = np.asarray(y_true)
    out = {}
    for group in np.unique(groups):
        mine = groups == group
        if mine.sum() < TRUSTED_ROWS or (y[mine] == 1).sum() < TRUSTED_POSITIVES:
            out[str(group)] = int(mine.sum())
    return out


class _Scores(BaseEstimator):
    """The model's scores as a fitted scikit-learn-style estimator (column 0 of X): fairlearn
    post-processes scores fintune has already computed."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> _Scores:
        self.fitted_ = True
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x)[:, 0]


def _rule(interpolation: Any) -> dict[str, Any]:
    # Thresholds on probabilities: +-inf (always / never) become values outside [0, 1], which
    # JSON can hold and which decide the same way.
    def bounded(t: float) -> float:
        return float(min(max(t, -1.0), 2.0))
    out = {"p0": float(interpolation.p0), "operator0": interpolation.operation0.operator,
           "threshold0": bounded(interpolation.operation0.threshold), "p1": float(interpolation.p1),
           "operator1": interpolation.operation1.operator, "threshold1": bounded(interpolation.operation1.threshold)}
    if "p_ignore" in interpolation:
        out.update(p_ignore=float(interpolation.p_ignore), prediction_constant=float(interpolation.prediction_constant))
    return out
