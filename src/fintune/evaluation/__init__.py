"""Evaluation: reports on disk, fairness, robustness, explanations, privacy audits.

The metrics themselves live in :mod:`fintune.scoring` (training reads them too); the
common ones are named here as well, for users of the Python API.
"""

from fintune.evaluation.report import write_evaluation
from fintune.scoring.metrics import (
    classification_metrics, compute_metrics, metric_mode, primary_metric, regression_metrics,
)
from fintune.scoring.threshold import choose_threshold

__all__ = [
    "choose_threshold",
    "classification_metrics",
    "compute_metrics",
    "metric_mode",
    "primary_metric",
    "regression_metrics",
    "write_evaluation",
]
