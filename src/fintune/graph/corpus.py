"""Reading a corpus: its texts and, optionally, their dates, from a CSV/JSONL/Parquet file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fintune.errors import DataError


@dataclass
class Corpus:
    """The texts of a corpus file and, when a date column was given, one date (or None) per text."""

    source: str
    texts: list[str]
    dates: list[pd.Timestamp | None] | None = None


def read_corpus(input: str | Path, text_column: str = "text", date_column: str | None = None) -> Corpus:
    """Read a corpus file (format from its extension) and check its text and date columns.

    Raises:
        DataError: the file cannot be read, lacks a column, or holds a date that does not parse.
    """
    from fintune.data.load import read_table  # imports torch via fintune.data: keep `import` light

    source = str(input)
    table = read_table(source, "auto", "utf-8")
    texts = corpus_texts(table, text_column, source)
    dates = corpus_dates(table, date_column, source) if date_column is not None else None
    return Corpus(source, texts, dates)


def corpus_texts(table: pd.DataFrame, column: str, source: str) -> list[str]:
    """The texts of a corpus table; empty cells become "" (no entities), numbers text."""
    from fintune.data.clean import is_missing

    check_column(table, column, "text", "--text-column", source)
    return ["" if is_missing(v) else str(v) for v in table[column].tolist()]


def corpus_dates(table: pd.DataFrame, column: str, source: str) -> list[pd.Timestamp | None]:
    """The dates of a corpus table; an empty cell is None (that text has no period).

    Raises:
        DataError: a non-empty cell that is not a date, with its row (from 1).
    """
    from fintune.data.clean import is_missing

    check_column(table, column, "date", "--date-column", source)
    values = table[column].reset_index(drop=True)
    if pd.api.types.is_datetime64_any_dtype(values):
        return [None if pd.isna(v) else pd.Timestamp(v) for v in values]
    # As text, so 20240131 reads as a date, not as nanoseconds since 1970 (and not as
    # "20240131.0", which a number column with gaps holds).
    text = pd.Series(["" if is_missing(v) else _date_text(v) for v in values], dtype=object)
    parsed = pd.to_datetime(text.where(text != "", None), errors="coerce", format="mixed")
    bad = np.flatnonzero(parsed.isna().to_numpy() & (text != "").to_numpy())
    if len(bad):
        pos = int(bad[0])
        raise DataError(f"cannot parse '{text[pos]}' as a date; write dates like 2024-01-31",
                        file=source, row=pos + 1, column=column)
    return [None if pd.isna(v) else pd.Timestamp(v) for v in parsed]


def check_column(table: pd.DataFrame, column: str, role: str, option: str, source: str) -> None:
    """Raise a DataError naming the file's columns (and a close match) unless it has ``column``;
    ``option`` (the CLI flag that set it) goes into the message, so it says what to change."""
    from fintune.data.columns import check_columns

    check_columns(table, [(column, role)], source, keys={role: option})


def _date_text(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()
