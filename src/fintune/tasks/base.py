"""The task declaration and its registry."""

from __future__ import annotations

from typing import ClassVar, Literal

Answer = Literal["class", "value", "text", "tags", "labels"]


class Task:
    """One task: a subclass per task, registered by its ``name``; nothing is instantiated."""

    name: ClassVar[str]
    # What the model gives for one input: class probabilities, a number, generated text, a tag per word,
    # or one probability per label (any number of labels may hold).
    answer: ClassVar[Answer]
    # The metric that picks checkpoints and early stopping by default, and its direction.
    primary_metric: ClassVar[tuple[str, Literal["max", "min"]]]
    # What a person compares runs by (the board's and `fintune runs`' column).
    headline_metric: ClassVar[str]
    # The metrics its validation computes, when they are fixed (None: the metric function's keys).
    validation_metrics: ClassVar[tuple[str, ...] | None] = None
    # Class probabilities: what calibration, decision thresholds, fairness and drift read.
    scores_classes: ClassVar[bool] = False
    # How its probabilities are calibrated on validation (decision.temperature_scaling): one
    # softmax temperature, one temperature per label, or not at all.
    calibration: ClassVar[Literal["softmax", "per_label"] | None] = None
    # Explanations attribute the probability of one class or label (the most probable) to the input.
    explained: ClassVar[bool] = False
    # Splits keep the label mix of the whole (classes to stratify by).
    stratified: ClassVar[bool] = False
    # The Hugging Face Hub's pipeline tag of its models, and of a model that reads table rows.
    pipeline_tag: ClassVar[str]
    tabular_pipeline_tag: ClassVar[str | None] = None
    # Reads a text with two entities marked in it (data.entity_columns).
    entity_pair: ClassVar[bool] = False
    # Labels that mean "nothing of interest" (relation: no relation), left out of its micro F1.
    none_labels: ClassVar[tuple[str, ...]] = ()
    # The model card's lines: what its outputs are worth, and (None: the measured calibration)
    # why its probabilities are not calibrated.
    card_outputs: ClassVar[str]
    card_calibration: ClassVar[str | None] = None


TASKS: dict[str, type[Task]] = {}


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: make ``cls`` available by its name."""
    TASKS[cls.name] = cls
    return cls


def task_names() -> tuple[str, ...]:
    """Every registered task's name, in registration order."""
    return tuple(TASKS)


def task_of(name: str) -> type[Task]:
    """The task registered as ``name``; an error that lists the known ones."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}") from None
