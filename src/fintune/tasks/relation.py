"""Relation classification: which relation holds between two entities of a sentence (FinRE,
TACRED, SemEval-2010 task 8). The entities are marked in the text (``data.entity_columns``),
then it is classification with one more metric: micro F1 over the real relations, leaving out
the label that says there is none."""

from fintune.tasks.base import Task, register


@register
class Relation(Task):
    name = "relation"
    answer = "class"
    primary_metric = ("micro_f1", "max")
    headline_metric = "micro_f1"
    scores_classes = True
    calibration = "softmax"
    explained = True
    stratified = True
    entity_pair = True
    # The label that means "no relation", by the names datasets give it: it is left out of micro F1
    # (predicting it for everything would otherwise score the share of unrelated pairs).
    none_labels = ("unknown", "no_relation", "none", "other", "Other", "NA", "无关系")
    pipeline_tag = "text-classification"
    card_outputs = "Predictions come with one probability per relation"
