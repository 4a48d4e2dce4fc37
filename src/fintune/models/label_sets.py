"""What a multi-label model's probabilities become: the labels that hold, as lists of names and
as prediction columns."""

from __future__ import annotations

from typing import Any

import numpy as np

from fintune.scoring.multilabel import decide


def predicted_sets(probs: np.ndarray, label_names: list[str], thresholds: list[float] | None) -> list[list[str]]:
    """Each row's labels at or above their thresholds (0.5 where none were tuned)."""
    held = decide(probs, thresholds)
    return [[label_names[j] for j in np.flatnonzero(row)] for row in held]


def label_columns(probs: np.ndarray, label_names: list[str], thresholds: list[float] | None,
                  separator: str | None) -> dict[str, Any]:
    """``predicted_labels`` (joined with the training file's separator, else ';') and one
    ``prob_<label>`` column per label."""
    joiner = separator or ";"
    cols: dict[str, Any] = {"predicted_labels": [joiner.join(s) for s in predicted_sets(probs, label_names,
                                                                                        thresholds)]}
    for j, name in enumerate(label_names):
        cols[f"prob_{name}"] = probs[:, j]
    return cols
