"""In-memory tables as training files: a pandas DataFrame or a Hugging Face ``Dataset``
becomes a Parquet file, so a run made from a notebook is a run like any other (its
``config.yaml`` names real files; ``--resume`` and ``fintune data check`` work on it).

The file is named by a hash of the table's content and kept in fintune's cache
(``$FINTUNE_HOME/frames``): the same frame maps to the same file, and the file is written
once, atomically.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fintune.errors import FILE_NAMES, DataError
from fintune.files import atomic_file, fintune_home

TABLES = "a path (CSV, JSONL, Parquet, CoNLL), a pandas DataFrame or a Hugging Face Dataset"


def frames_folder() -> Path:
    """Where in-memory tables are written: ``$FINTUNE_HOME/frames``."""
    return fintune_home() / "frames"


def table_path(data: Any, what: str) -> str | None:
    """``data`` as a file path: a path as given, a table written to the cache; None stays None."""
    if data is None:
        return None
    if isinstance(data, (str, Path)):
        return str(data)
    if hasattr(data, "to_pandas") and hasattr(data, "column_names"):  # datasets.Dataset, not imported here
        data = data.to_pandas()
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"{what}: give {TABLES}; got {type(data).__name__}")
    check_frame(data, what)
    path = str(write_frame(data))
    FILE_NAMES[path] = f"the DataFrame given as {what}"
    return path


def check_frame(frame: pd.DataFrame, what: str) -> None:
    """What Parquet cannot hold, said in the frame's own terms: duplicate column names, and a
    column that mixes text with numbers (Parquet columns have one type)."""
    names = [str(c) for c in frame.columns]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DataError(f"the DataFrame given as {what} has duplicate column names ({', '.join(duplicates)}); "
                        "rename them so that each column has its own name")
    for column in frame.columns:
        if frame[column].dtype != object:
            continue
        kinds = {_kind(v) for v in frame[column].dropna().head(100_000)}
        if "text" in kinds and "number" in kinds:
            raise DataError(f"the DataFrame given as {what}: column '{column}' mixes text and numbers; make it "
                            f"one type, e.g. frame['{column}'] = frame['{column}'].astype(str)")


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return "text"
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return "number"
    return type(value).__name__


def write_frame(frame: pd.DataFrame) -> Path:
    """Write ``frame`` (its index dropped: rows are numbered from 1 as in files) as Parquet, once."""
    frame = frame.reset_index(drop=True)
    digest = hashlib.sha256()
    digest.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame.astype(object).where(frame.notna(), None).map(repr),
                                             index=True).to_numpy().tobytes())
    path = frames_folder() / f"{digest.hexdigest()[:24]}.parquet"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as tmp:
            try:
                frame.to_parquet(tmp, index=False)
            except (ValueError, TypeError) as exc:  # pyarrow's ArrowInvalid / ArrowTypeError
                raise DataError(f"the DataFrame cannot be stored as a table: {exc}; give each column one type "
                                "(text, numbers, or booleans)") from None
    return path
