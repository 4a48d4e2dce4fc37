"""Tables read in chunks, so predicting over a file holds one chunk in memory, not the file.

Parquet is read by record batches (pyarrow's dataset scanner: a file or a folder of parts,
as Spark writes them), CSV by pandas' chunked reader with the same cell rules as
:func:`fintune.data.load.read_table` (text stays text, only empty cells are missing), JSON
Lines line by line with the same checks. Each chunk is indexed by its rows' numbers in the
file (from 1), as :func:`fintune.data.columns.load_table` indexes a whole table, so an
error in a chunk names the file's row.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from fintune.config import DataConfig
from fintune.data.load import SUFFIX_FORMATS, json_record
from fintune.errors import DataError

STREAMED = ("csv", "jsonl", "parquet")


def streamable(path: str, cfg: DataConfig) -> bool:
    """Whether ``path`` can be read in chunks: a local CSV, JSON Lines or Parquet file (or
    folder of Parquet parts), and no ``data.windows`` (a window needs the rows before it)."""
    # .json may hold one array; data.files reads every file first (cached by content).
    if cfg.windows is not None or cfg.files is not None or path.lower().endswith(".json"):
        return False
    if not Path(path).exists():  # the whole-file reader says what is missing
        return False
    return _format(path, cfg) in STREAMED


def row_count(path: str, cfg: DataConfig) -> int | None:
    """Rows of a Parquet input, from its metadata; None for text formats (not known before reading)."""
    if _format(path, cfg) != "parquet":
        return None
    import pyarrow.dataset as ds

    try:
        return int(ds.dataset(path, format="parquet").count_rows())
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(f"could not read the file as Parquet: {exc}", file=path) from None


def stream_table(path: str, cfg: DataConfig, rows: int) -> Iterator[pd.DataFrame]:
    """Chunks of at most ``rows`` rows, each indexed by file row numbers from 1."""
    fmt = _format(path, cfg)
    chunks = {"parquet": _parquet, "csv": _csv, "jsonl": _jsonl}[fmt](path, cfg, rows)
    first = 1
    seen = False
    for chunk in chunks:
        if not len(chunk):
            continue
        seen = True
        chunk.index = np.arange(first, first + len(chunk))
        first += len(chunk)
        yield chunk
    if not seen:
        raise DataError("the file has no data rows (only a header, or nothing at all)", file=path)


def _format(path: str, cfg: DataConfig) -> str:
    target = Path(path)
    if cfg.format != "auto":
        return cfg.format
    if target.is_dir():
        return "parquet" if any(target.glob("*.parquet")) else "other"
    return SUFFIX_FORMATS.get(target.suffix.lower(), "other")


def _parquet(path: str, cfg: DataConfig, rows: int) -> Iterator[pd.DataFrame]:
    import pyarrow.dataset as ds

    try:
        for batch in ds.dataset(path, format="parquet").to_batches(batch_size=rows):
            yield batch.to_pandas()
    except (OSError, ValueError) as exc:
        raise DataError(f"could not read the file as Parquet: {exc}", file=path) from None


def _encoding(cfg: DataConfig, path: str) -> str:
    try:
        codec = codecs.lookup(cfg.encoding).name
    except LookupError:
        raise DataError(f"unknown encoding '{cfg.encoding}'; set data.encoding to a Python codec name", file=path) from None
    return "utf-8-sig" if codec == "utf-8" else codec  # a BOM would end up in the first column name


def _csv(path: str, cfg: DataConfig, rows: int) -> Iterator[pd.DataFrame]:
    sep = "\t" if path.lower().endswith(".tsv") else ","
    try:
        # As read_table: dtype=str keeps "0012" as text, only empty cells are missing.
        yield from pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_values=[""], chunksize=rows,
                               encoding=_encoding(cfg, path))
    except UnicodeDecodeError as exc:
        raise DataError(f"cannot decode the file as {cfg.encoding} ({exc.reason}); set data.encoding",
                        file=path) from None
    except pd.errors.EmptyDataError:
        raise DataError("the file is empty (no header and no rows)", file=path) from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"could not parse the file as CSV: {str(exc).strip()}. Check the delimiter and that "
                        "texts holding commas, quotes or newlines are quoted", file=path) from None


def _jsonl(path: str, cfg: DataConfig, rows: int) -> Iterator[pd.DataFrame]:
    records = []
    try:
        with open(path, encoding=_encoding(cfg, path)) as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    records.append(json_record(line, number, path))
                if len(records) == rows:
                    yield pd.DataFrame.from_records(records)
                    records = []
    except UnicodeDecodeError as exc:
        raise DataError(f"cannot decode the file as {cfg.encoding} ({exc.reason}); set data.encoding",
                        file=path) from None
    if records:
        yield pd.DataFrame.from_records(records)
