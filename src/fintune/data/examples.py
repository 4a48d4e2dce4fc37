"""The examples of one split, and the prepared splits of a run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

@dataclass
class Examples:
    """One split, ready for a model's processors: texts, labels and what else each row carries."""

    texts: list[str]
    labels: np.ndarray | None  # int64 label ids (classification), float32 (regression), str (generation)
    dates: pd.Series | None  # parsed dates when data.date_column is set
    source: str  # file (and split) name, for messages and reports
    features: pd.DataFrame | None = None  # raw feature columns; index = the file's row numbers
    rows: np.ndarray | None = None  # each example's row in its file (from 1), for audits and reports
    weights: np.ndarray | None = None  # each row's weight in the training loss (data.weight_column)
    # What each row carries besides its text, by modality (a list or array with one entry per row;
    # absent when the rows have none). A new modality (images, audio) is a new name here and a
    # processor that reads it (fintune.models.inference); this class does not change.
    parts: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.parts = {name: values for name, values in self.parts.items() if values is not None}

    # The parts fintune's kinds read, by name.
    @property
    def instructions(self) -> list[str] | None:
        """Generation: each record's instruction (data.instruction_column)."""
        return self.parts.get("instructions")

    @property
    def pairs(self) -> list[str] | None:
        """Text pairs: each row's second text (data.pair_column), e.g. a target."""
        return self.parts.get("pairs")

    @property
    def tokens(self) -> list[list[str]] | None:
        """token_classification: each sentence's words (labels then hold tag lists)."""
        return self.parts.get("tokens")

    @property
    def documents(self) -> np.ndarray | None:
        """token_classification: the document of each sentence (CoNLL -DOCSTART-)."""
        return self.parts.get("documents")

    @property
    def rejected(self) -> np.ndarray | None:
        """Preference tuning: each prompt's rejected answer (labels hold the chosen)."""
        return self.parts.get("rejected")

    @property
    def messages(self) -> list[list[dict[str, str]]] | None:
        """Conversations (data.messages_column): each record's turns up to the last user turn;
        texts hold that user turn, labels the assistant's answer to it."""
        return self.parts.get("messages")

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, start: int, stop: int) -> Examples:
        """Rows ``start:stop``, for chunked prediction."""
        return self.take(np.arange(start, min(stop, len(self))))

    def take(self, index: np.ndarray) -> Examples:
        """The examples at positions ``index``."""
        def pick(x: Any) -> Any:
            if x is None:
                return None
            return x[index] if isinstance(x, np.ndarray) else [x[i] for i in index]
        return Examples([self.texts[i] for i in index], pick(self.labels),
                        None if self.dates is None else self.dates.iloc[index].reset_index(drop=True),
                        self.source, None if self.features is None else self.features.iloc[index],
                        pick(self.rows), pick(self.weights), {name: pick(v) for name, v in self.parts.items()})


@dataclass
class PreparedData:
    """Everything training needs from the data section of the config."""

    train: Examples
    validation: Examples
    test: Examples | None
    label_names: list[str] | None  # None for regression; order = model's id2label
    report: dict  # the data quality report, JSON-serializable
