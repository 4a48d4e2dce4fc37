"""Generation: an answer in text (instruction tuning, chat), scored as text or as classes."""

from fintune.tasks.base import Task, register


@register
class Generation(Task):
    name = "generation"
    answer = "text"
    # The validation loss on the reference answers: generating every validation answer at each
    # evaluation would cost more than the training steps.
    primary_metric = ("loss", "min")
    headline_metric = "exact_match"
    validation_metrics = ("loss",)  # fintune.models.generation.answer_loss
    pipeline_tag = "text-generation"
    card_outputs = "Answers are generated text and can be wrong with no sign of doubt"
    card_calibration = "Generated answers carry no probabilities; nothing is calibrated."
