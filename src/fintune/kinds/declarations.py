"""The declaration of every model kind."""

from __future__ import annotations

from dataclasses import dataclass

SENTENCE = frozenset({"classification", "regression"})


@dataclass(frozen=True)
class Kind:
    """One model kind: what ``model.kind`` names."""

    name: str
    tasks: frozenset[str]  # the tasks a recipe trains it for
    summary: str  # one line for menus and docs
    member: bool = False  # an ensemble may hold it (model.ensemble.members)


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("text", SENTENCE | {"token_classification"}, "a pretrained text encoder fine-tuned (or a table's rows "
         "serialized to text)", member=True),
    Kind("long_text", SENTENCE, "an encoder over overlapping windows of long documents, pooled"),
    Kind("probe", SENTENCE, "a linear probe on a frozen encoder's sentence vectors"),
    Kind("fusion", SENTENCE, "text and feature columns through one head", member=True),
    Kind("mlp", SENTENCE, "a multilayer perceptron on the feature columns", member=True),
    Kind("gbm", SENTENCE, "LightGBM on the feature columns", member=True),
    Kind("linear", SENTENCE, "logistic or ridge regression on the feature columns", member=True),
    Kind("ensemble", SENTENCE, "a weighted ensemble of member kinds, weights chosen on validation"),
    Kind("causal", frozenset({"classification", "generation"}), "a causal LM: label words, a classification "
         "head, or generated answers"),
)}


def kind_names() -> tuple[str, ...]:
    """Every kind's name, in declaration order."""
    return tuple(KINDS)


def member_kinds() -> tuple[str, ...]:
    """The kinds an ensemble may hold."""
    return tuple(name for name, kind in KINDS.items() if kind.member)


def kind_of(name: str) -> Kind:
    """The kind declared as ``name``; an error that lists the known ones."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown model kind {name!r}; expected one of {', '.join(KINDS)}") from None
