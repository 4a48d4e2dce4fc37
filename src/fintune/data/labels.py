"""Label parsing: raw label cells to names (``data.label_map``), names to the model's ids,
numbers for regression, answer texts for generation. Every error names the row."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from fintune.config import DataConfig
from fintune.data.clean import is_missing
from fintune.data.columns import ROW_NOTE, clean_cell, nearest_name
from fintune.errors import DataError

def resolve_label_names(cfg: DataConfig, train_labels: list[str], source: str) -> list[str]:
    """The label order (the model's id2label): label_names, else label_map values, else sorted.

    Sorted labels use numeric order when every label is a number, so ``2`` comes before ``10``.
    """
    names = label_order(cfg, train_labels)
    if len(set(train_labels)) < 2:
        found = ", ".join(f"'{n}'" for n in sorted(set(train_labels))) or "none"
        raise DataError(f"classification needs at least 2 different labels in the training data, "
                        f"found {found} in column '{cfg.label_column}'; use task: regression "
                        "for a numeric target", file=source, column=cfg.label_column)
    return names


def label_order(cfg: DataConfig, labels: list[str]) -> list[str]:
    """``data.label_names``, else ``data.label_map``'s values, else the labels seen, sorted
    (numerically when every label is a number)."""
    if cfg.label_names is not None:
        return list(cfg.label_names)
    if cfg.label_map is not None:
        return list(dict.fromkeys(cfg.label_map.values()))
    unique = set(labels)
    numeric = all(_as_number(label) is not None for label in unique)
    return sorted(unique, key=(lambda t: (_as_number(t), t)) if numeric else None)


def label_texts(values: pd.Series) -> list[str | None]:
    """Raw labels as text, None where missing. Whole-number columns print as ints (1.0 -> "1").

    The whole column decides: a numeric column (or a CSV column of numbers, which is read
    as text) is printed as numbers, so the same label reads the same from CSV and Parquet.
    """
    items = values.tolist()
    numbers = [None if _blank(v) else _as_number(v) for v in items]
    numeric = any(not _blank(v) for v in items) and all(
        n is not None for v, n in zip(items, numbers) if not _blank(v))
    if numeric:
        return [None if n is None else _number_text(n) for n in numbers]
    return [None if _blank(v) else str(v).strip() for v in items]


def _blank(value: Any) -> bool:
    return is_missing(value) or (isinstance(value, str) and not value.strip())


def _as_number(value: Any) -> float | None:
    """A finite number from an int, float or numeric string; None for anything else (bools too)."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _number_text(number: float) -> str:
    return str(int(number)) if number.is_integer() else repr(number)


def map_labels(texts: list[str | None], cfg: DataConfig, source: str, column: str) -> list[str]:
    """Check each raw label and map it through ``label_map``; missing/unknown -> DataError."""
    mapped = []
    for row, raw in enumerate(texts, start=1):
        if raw is None:
            raise DataError(f"missing label (empty cell or null); every row needs a label {ROW_NOTE}",
                            file=source, row=row, column=column)
        name = raw
        if cfg.label_map is not None:
            if raw in cfg.label_map:
                name = cfg.label_map[raw]
            elif raw not in cfg.label_map.values():  # a file may already use the mapped names
                keys = ", ".join(cfg.label_map)
                raise DataError(f"label '{raw}' is not a key of data.label_map (keys: {keys}); add "
                                f"it to data.label_map {ROW_NOTE}", file=source, row=row, column=column)
        if cfg.label_names is not None and name not in cfg.label_names:
            near = nearest_name(name, cfg.label_names)
            hint = f" Did you mean '{near}'?" if near else ""
            via = "" if cfg.label_map else " If the file holds label ids, map them with data.label_map."
            raise DataError(f"label '{name}' is not in data.label_names ({', '.join(cfg.label_names)})."
                            f"{hint}{via} {ROW_NOTE}", file=source, row=row, column=column)
        mapped.append(name)
    return mapped


def label_ids(names: list[str], rows: list[int], label_names: list[str], source: str,
               column: str, known_from: str) -> np.ndarray:
    index = {name: i for i, name in enumerate(label_names)}
    ids = np.empty(len(names), dtype=np.int64)
    for pos, (name, row) in enumerate(zip(names, rows)):
        if name not in index:
            raise DataError(f"label '{name}' is not one of {known_from}: "
                            f"{', '.join(label_names)} {ROW_NOTE}", file=source, row=row, column=column)
        ids[pos] = index[name]
    return ids


def known_labels_hint(cfg: DataConfig) -> str:
    if cfg.label_names is not None:
        return "data.label_names"
    if cfg.label_map is not None:
        return "the values of data.label_map"
    return f"the labels in the training data ({cfg.train}); known labels are"


def answer_texts(values: pd.Series, cfg: DataConfig, source: str) -> np.ndarray:
    """Generation: the reference answers, cleaned (and masked) like the input text."""
    # A JSON or CSV answer such as 3 or 0.5 is read as a number; it is still the answer's text.
    items = [_number_text(float(v)) if _as_number(v) is not None and not isinstance(v, str) else v
             for v in values.tolist()]
    answers = [clean_cell(value, cfg, source, pos + 1, cfg.label_column) for pos, value in enumerate(items)]
    return np.array(answers, dtype=object)


def target_values(values: pd.Series, source: str, column: str) -> np.ndarray:
    """Regression targets as float32; a missing or non-numeric value is a DataError."""
    out = np.empty(len(values), dtype=np.float32)
    for pos, value in enumerate(values.tolist()):
        row = pos + 1
        if _blank(value):
            raise DataError(f"missing label (empty cell or null); every row needs a number {ROW_NOTE}",
                            file=source, row=row, column=column)
        number = _as_number(value)
        if number is None:
            raise DataError(f"regression label {value!r} is not a number; labels must be numbers "
                            f"such as 0.25 or -3 {ROW_NOTE}", file=source, row=row, column=column)
        out[pos] = number
    return out
