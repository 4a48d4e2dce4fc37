"""Multi-label labels: a cell holds a list of labels (JSON, Parquet) or one text with
``data.label_separator`` between them; each row becomes a sorted tuple of names, then one
0/1 column per label. Every error names the row."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fintune.config import DataConfig
from fintune.data.clean import is_missing
from fintune.data.columns import ROW_NOTE
from fintune.data.labels import map_labels
from fintune.errors import DataError

LabelSet = tuple[str, ...]


def label_sets(values: pd.Series, cfg: DataConfig, source: str, column: str) -> list[LabelSet]:
    """Each cell's labels, mapped through ``data.label_map`` and checked against
    ``data.label_names`` like a single label. An empty list means no label holds, and so does an
    empty cell when labels are separated text (a CSV writes an empty list as an empty cell)."""
    out: list[LabelSet] = []
    for row, cell in enumerate(values.tolist(), start=1):
        raw = _cell_labels(cell, cfg.label_separator, source, row, column)
        names = map_labels(raw, cfg, source, column) if raw else []
        out.append(tuple(sorted(set(names))))
    return out


def _cell_labels(cell: Any, separator: str | None, source: str, row: int, column: str) -> list[str | None]:
    if isinstance(cell, (list, tuple, np.ndarray)):
        return [None if is_missing(v) else str(v).strip() for v in cell]
    if is_missing(cell):
        if separator is not None:  # a CSV cannot tell an empty text from a missing one: no label holds
            return []
        raise DataError(f"missing labels (null); give an empty list for a row with no label {ROW_NOTE}",
                        file=source, row=row, column=column)
    text = str(cell).strip()
    if separator is None:
        return [text] if text else []
    return [part.strip() for part in text.split(separator) if part.strip()]


def label_matrix(sets: list[LabelSet], rows: list[int], label_names: list[str], source: str, column: str,
                 known_from: str) -> np.ndarray:
    """Rows of 0/1 (float32), one column per name in ``label_names``."""
    index = {name: i for i, name in enumerate(label_names)}
    matrix = np.zeros((len(sets), len(label_names)), dtype=np.float32)
    for pos, (labels, row) in enumerate(zip(sets, rows)):
        for name in labels:
            if name not in index:
                raise DataError(f"label '{name}' is not one of {known_from}: {', '.join(label_names)} {ROW_NOTE}",
                                file=source, row=row, column=column)
            matrix[pos, index[name]] = 1.0
    return matrix

