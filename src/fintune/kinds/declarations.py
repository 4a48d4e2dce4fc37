"""The declaration of every model kind."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SENTENCE = frozenset({"classification", "regression"})
# What a kind reads: a text column (or a table's rows serialized to text; pairs too), exactly one
# text column, text and feature columns, feature columns alone, a prompt (text or
# conversations), or whatever its members read.
Reads = Literal["text", "one_text", "text_and_features", "features", "prompt", "members"]


@dataclass(frozen=True)
class Kind:
    """One model kind: what ``model.kind`` names."""

    name: str
    tasks: frozenset[str]  # the tasks a recipe trains it for
    reads: Reads
    summary: str  # one line for menus and docs
    member: bool = False  # an ensemble may hold it (model.ensemble.members)
    # DP-SGD: through a strategy that declares it ("strategy"), on the head alone with strategy
    # full ("head": a probe's linear layer on cached vectors), or not at all (None).
    dp: Literal["strategy", "head"] | None = None
    windows: bool = False  # reads a document as overlapping windows of model.max_length tokens
    pads_with_eos: bool = False  # a decoder tokenizer without a pad token pads with end-of-sequence


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("text", SENTENCE | {"token_classification", "multi_label", "relation"}, "text", "a pretrained text encoder fine-tuned (or a "
         "table's rows serialized to text)", member=True, dp="strategy"),
    Kind("long_text", SENTENCE, "one_text", "an encoder over overlapping windows of long documents, pooled",
         windows=True),
    Kind("probe", SENTENCE, "one_text", "a linear probe on a frozen encoder's sentence vectors", dp="head"),
    Kind("fusion", SENTENCE, "text_and_features", "text and feature columns through one head", member=True),
    Kind("mlp", SENTENCE, "features", "a multilayer perceptron on the feature columns", member=True),
    Kind("gbm", SENTENCE, "features", "LightGBM on the feature columns", member=True),
    Kind("linear", SENTENCE, "features", "logistic or ridge regression on the feature columns",
         member=True),
    Kind("ensemble", SENTENCE, "members", "a weighted ensemble of member kinds, weights chosen on validation"),
    Kind("bow", SENTENCE | {"multi_label", "relation"}, "one_text", "words and word pairs (TF-IDF) with logistic or ridge regression: the "
         "baseline without a backbone"),
    Kind("causal", frozenset({"classification", "generation", "multi_label", "relation"}), "prompt", "a causal LM: label "
         "words, a classification head, or generated answers", pads_with_eos=True),
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
