"""Regression: one number per input (a return, a loss given default)."""

from fintune.tasks.base import Task, register


@register
class Regression(Task):
    name = "regression"
    answer = "value"
    primary_metric = ("mse", "min")
    # The Hub files text regression under text-classification (a one-logit head).
    headline_metric = "mse"
    pipeline_tag = "text-classification"
    tabular_pipeline_tag = "tabular-regression"
    card_outputs = "Predictions are point estimates, with no interval"
    card_calibration = "Predictions are numbers; there are no probabilities to calibrate."
