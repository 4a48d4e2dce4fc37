"""Multi-label classification: any number of labels per input (a news item's categories), one
independent probability per label."""

from fintune.tasks.base import Task, register


@register
class MultiLabel(Task):
    name = "multi_label"
    answer = "labels"
    primary_metric = ("micro_f1", "max")
    headline_metric = "micro_f1"
    # Neither softmax class probabilities (fairness and drift read those) nor stratifiable by
    # one class; each label's probability gets its own temperature.
    scores_classes = False
    calibration = "per_label"
    explained = True
    stratified = False
    pipeline_tag = "text-classification"
    card_outputs = ("Predictions come with one probability per label (sigmoid, independent of the others); "
                    "a label is predicted where its probability reaches that label's threshold, tuned on "
                    "validation")
