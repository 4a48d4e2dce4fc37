"""Classification: one class per input (sentiment, default, fraud), with class probabilities."""

from fintune.tasks.base import Task, register


@register
class Classification(Task):
    name = "classification"
    answer = "class"
    primary_metric = ("weighted_f1", "max")
    scores_classes = True
    calibration = "softmax"
    explained = True
    stratified = True
    headline_metric = "weighted_f1"
    pipeline_tag = "text-classification"
    tabular_pipeline_tag = "tabular-classification"
    card_outputs = "Predictions come with class probabilities"
