"""Sentiment toward each entity, in [-1, 1], from a classification or regression run."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from rich.console import Console

from fintune.errors import FintuneError
from fintune.graph.ner import EntityLike
from fintune.graph.progress import OnBatch, progress_bar
from fintune.tasks import task_of

SENTIMENT_TASKS = ("classification", "regression")

# Words in a label name that give it a polarity. Labels are split into words, so
# "strong_positive" and "Bullish" count; anything else (neutral, mixed, LABEL_3) is 0.
POSITIVE_WORDS = frozenset({"positive", "pos", "bullish", "bull", "up"})
NEGATIVE_WORDS = frozenset({"negative", "neg", "bearish", "bear", "down"})


class SentimentModel(Protocol):
    """What :func:`score_sentiment` needs of a sentiment run (``FintuneModel`` has it)."""

    task: str
    label_names: list[str] | None
    data_config: Any  # its ``pair_column`` says whether the model scores (text, target) pairs

    def outputs(self, examples: Any, batch_size: int = 64, on_batch: OnBatch | None = None) -> np.ndarray: ...


def polarities(label_names: Sequence[str] | None) -> np.ndarray:
    """+1, -1 or 0 per label, from the words in its name (positive/bullish/pos/up versus
    negative/bearish/neg/down, case-insensitive).

    Raises:
        FintuneError: no label has a polarity, so the run cannot give a sentiment.
    """
    names = list(label_names or [])
    values = np.array([_polarity(name) for name in names], dtype=np.float64)
    if not np.any(values):
        found = ", ".join(names) if names else "none"
        raise FintuneError(f"the sentiment run's labels ({found}) have no polarity; a sentiment run must "
                           "have positive/negative-like labels (positive, negative, bullish, bearish, ...) "
                           "or be a regression")
    return values


def _polarity(label: str) -> int:
    words = set(re.split(r"[^a-z]+", label.casefold()))
    positive, negative = bool(words & POSITIVE_WORDS), bool(words & NEGATIVE_WORDS)
    return 0 if positive == negative else (1 if positive else -1)


def sentiment_values(task: str, label_names: Sequence[str] | None, outputs: np.ndarray) -> np.ndarray:
    """One number per row: the value (regression), or the polarity-weighted class
    probabilities, P(positive) - P(negative), in [-1, 1] (classification)."""
    out = np.asarray(outputs, dtype=np.float64)
    if task_of(task).answer == "value":
        return out.reshape(-1)
    return out @ polarities(label_names)


def check_sentiment_model(model: SentimentModel) -> None:
    """Fail before any work when a run cannot give a sentiment (wrong task, no polarity)."""
    if model.task not in SENTIMENT_TASKS:
        raise FintuneError(f"the sentiment run is a {model.task} run; it must be classification "
                           "(with positive/negative-like labels) or regression")
    if task_of(model.task).scores_classes:
        polarities(model.label_names)


def score_sentiment(model: SentimentModel, texts: Sequence[str], entities: Sequence[Sequence[EntityLike]],
                    batch_size: int = 32, *, console: Console | None = None,
                    show_progress: bool = True) -> list[list[float]]:
    """One sentiment in [-1, 1] per entity, parallel to ``entities``.

    A run trained on (text, target) pairs (``data.pair_column`` set, e.g. FiQA) scores the
    sentiment toward each entity; each distinct (text, entity text) pair is scored once.
    Any other run scores the text, and every entity in it gets that score. While the model
    runs, a transient progress bar counts the inputs scored on ``console`` (default: stderr).
    """
    check_sentiment_model(model)
    if getattr(model.data_config, "pair_column", None):
        pairs = list(dict.fromkeys((i, e.text) for i, found in enumerate(entities) for e in found))
        values = _score(model, [texts[i] for i, _ in pairs], [t for _, t in pairs], batch_size,
                        console, show_progress)
        by_pair = dict(zip(pairs, values.tolist()))
        return [[by_pair[(i, e.text)] for e in found] for i, found in enumerate(entities)]
    todo = [i for i, found in enumerate(entities) if found]  # texts without entities need no score
    values = _score(model, [texts[i] for i in todo], None, batch_size, console, show_progress)
    by_text = dict(zip(todo, values.tolist()))
    return [[by_text[i]] * len(found) if found else [] for i, found in enumerate(entities)]


def _score(model: SentimentModel, texts: list[str], targets: list[str] | None, batch_size: int,
           console: Console | None, show_progress: bool) -> np.ndarray:
    """The sentiment of each text (``targets`` None) or of each (text, target) pair."""
    if not texts:
        return np.array([])
    inputs: Any = texts
    if targets is not None:
        from fintune.data import Examples  # imports torch: only when a model runs

        inputs = Examples(texts, None, None, "corpus", parts={"pairs": targets})
    with progress_bar("scoring sentiment", len(texts), console, show_progress) as on_batch:
        outputs = model.outputs(inputs, batch_size, on_batch=on_batch)
    return sentiment_values(model.task, model.label_names, outputs)
