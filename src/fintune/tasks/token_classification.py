"""Token classification: a tag per word (named entities), scored by entity."""

from fintune.tasks.base import Task, register


@register
class TokenClassification(Task):
    name = "token_classification"
    answer = "tags"
    # Entity-level micro F1 (exact span and type), as in the CoNLL shared tasks.
    primary_metric = ("f1", "max")
    headline_metric = "f1"
    validation_metrics = ("f1", "precision", "recall", "macro_f1", "word_accuracy")  # tagging.metrics
    pipeline_tag = "token-classification"
    card_outputs = "Entities come with the mean probability of their tags, a rough confidence"
    card_calibration = ("Tag probabilities are the model's softmax, not calibrated; entity scores are "
                        "exact-span matches.")
