"""Evaluation: metrics for classification and regression, and the on-disk report."""

from fintune.evaluation.metrics import (
    classification_metrics, compute_metrics, metric_mode, primary_metric, regression_metrics,
)
from fintune.evaluation.report import write_evaluation
from fintune.evaluation.threshold import choose_threshold

__all__ = [
    "choose_threshold",
    "classification_metrics",
    "compute_metrics",
    "metric_mode",
    "primary_metric",
    "regression_metrics",
    "write_evaluation",
]
