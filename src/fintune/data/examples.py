"""The examples of one split, and the prepared splits of a run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

@dataclass
class Examples:
    """One split, ready for a tokenizer."""

    texts: list[str]
    labels: np.ndarray | None  # int64 label ids (classification), float32 (regression), str (generation)
    dates: pd.Series | None  # parsed dates when data.date_column is set
    source: str  # file (and split) name, for messages and reports
    features: pd.DataFrame | None = None  # raw feature columns; index = the file's row numbers
    rows: np.ndarray | None = None  # each example's row in its file (from 1), for audits and reports
    instructions: list[str] | None = None  # generation: each record's instruction (data.instruction_column)
    pairs: list[str] | None = None  # text pairs: each row's second text (data.pair_column), e.g. a target
    tokens: list[list[str]] | None = None  # token_classification: each sentence's words; labels hold tag lists
    documents: np.ndarray | None = None  # token_classification: the document of each sentence (CoNLL -DOCSTART-)
    weights: np.ndarray | None = None  # each row's weight in the training loss (data.weight_column)
    rejected: np.ndarray | None = None  # preference tuning: each prompt's rejected answer (labels: the chosen)
    # Conversations (data.messages_column): each record's turns up to the last user turn; texts
    # hold that user turn, labels the assistant's answer to it.
    messages: list[list[dict[str, str]]] | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, start: int, stop: int) -> Examples:
        """Rows ``start:stop``, for chunked prediction."""
        return self.take(np.arange(start, min(stop, len(self))))

    def take(self, index: np.ndarray) -> Examples:
        """The examples at positions ``index``."""
        def pick(x: Any) -> Any:
            return None if x is None else x[index]

        def pick_list(x: list | None) -> list | None:
            return None if x is None else [x[i] for i in index]
        return Examples([self.texts[i] for i in index], pick(self.labels),
                        None if self.dates is None else self.dates.iloc[index].reset_index(drop=True),
                        self.source, None if self.features is None else self.features.iloc[index],
                        pick(self.rows), pick_list(self.instructions), pick_list(self.pairs), pick_list(self.tokens),
                        pick(self.documents), pick(self.weights), pick(self.rejected), pick_list(self.messages))


@dataclass
class PreparedData:
    """Everything training needs from the data section of the config."""

    train: Examples
    validation: Examples
    test: Examples | None
    label_names: list[str] | None  # None for regression; order = model's id2label
    report: dict  # the data quality report, JSON-serializable
