"""Read a table of examples from CSV, JSON Lines, Parquet, a ``save_to_disk`` folder or the Hub.

Every failure a user can cause (a wrong path, the wrong encoding, a broken file, an empty
file, an unknown suffix) becomes a :class:`~fintune.errors.DataError` that names the file
and says what to change. Text is kept as text: CSV cells are read as strings so that
``"0012"`` never turns into ``12``.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from fintune.errors import DataError

FORMATS = ("auto", "csv", "jsonl", "parquet", "conll", "hf_disk", "hub")

# Suffix -> format for fmt "auto". ".json" is read as JSON Lines (a JSON array is accepted too).
SUFFIX_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".conll": "conll",
    ".bio": "conll",
}

# Marker files that `datasets` writes with save_to_disk.
_HF_DATASET_FILES = ("dataset_info.json", "state.json")
_HF_DICT_FILE = "dataset_dict.json"


def read_table(path: str, fmt: str = "auto", encoding: str = "utf-8") -> pd.DataFrame:
    """Read a data file into a DataFrame with one row per example.

    ``fmt`` is one of ``auto`` (from the suffix, or a ``save_to_disk`` folder), ``csv``
    (``.tsv`` is tab-separated), ``jsonl``, ``parquet``, ``conll`` (one sentence per row, columns
    ``tokens`` and ``tags``: see :func:`parse_conll`), ``hf_disk`` (``folder`` or
    ``folder#split`` for a DatasetDict, default split ``train``) or ``hub``
    (``dataset_id`` or ``dataset_id#split``, default split ``train``).

    Raises:
        DataError: the file is missing, cannot be decoded or parsed, has no rows, or its
            format cannot be told from its name.
    """
    if fmt not in FORMATS:
        raise DataError(f"unknown data format '{fmt}'; use one of: {', '.join(FORMATS)}", file=path)
    if fmt == "hub":
        frame = _read_hub(path)
    else:
        frame = _read_local(path, fmt, encoding)
    if len(frame) == 0:
        raise DataError("the file has no data rows (only a header, or nothing at all); "
                        "add examples or point data.train/validation/test at another file", file=path)
    # Rows are addressed by position (row N = Nth data row); a named index, as Parquet may
    # restore one, is data the user may want as a column, so keep it.
    named = frame.index.nlevels > 1 or frame.index.name is not None
    return frame.reset_index(drop=not named)


# ---------------------------------------------------------------- local files


def _read_local(path: str, fmt: str, encoding: str) -> pd.DataFrame:
    location, split = _split_ref(path)
    target = Path(location)
    if not target.exists():
        hint = ""
        if fmt == "auto" and not target.suffix and "/" in location:
            # "org/name" looks like a Hub id; say how to load one instead.
            hint = "; to load a dataset from the Hugging Face Hub set data.format: hub"
        raise DataError(f"file not found (looked for {target.resolve()}){hint}", file=path)
    if fmt == "auto":
        fmt = _detect_format(target, path)
    if fmt == "hf_disk":
        return _read_hf_disk(target, split, path)
    if split is not None and fmt != "hf_disk":
        raise DataError(f"'#{split}' selects a split, which only works for a save_to_disk folder "
                        "(data.format: hf_disk) or the Hub (data.format: hub)", file=path)
    if fmt == "parquet":
        return _read_parquet(target, path)
    if target.is_dir():
        raise DataError(f"is a folder, not a {fmt} file", file=path)
    text = _decode(target, encoding, path)
    if fmt == "csv":
        return _parse_csv(text, sep="\t" if target.suffix.lower() == ".tsv" else ",", path=path)
    if fmt == "conll":
        return parse_conll(text, path)
    return _parse_jsonl(text, path)


def parse_conll(text: str, path: str) -> pd.DataFrame:
    """CoNLL token files: one token per line, the token first and its tag last (POS and
    chunk columns between are ignored), a blank line between sentences, ``-DOCSTART-``
    lines start a new document. One row per sentence with lists ``tokens`` and ``tags``;
    ``line`` is the sentence's first line in the file, for messages; ``document`` counts the
    documents from 0.
    """
    sentences: list[tuple[list[str], list[str], int, int]] = []
    tokens: list[str] = []
    tags: list[str] = []
    first, document = 0, 0
    for number, raw in enumerate(text.splitlines(), start=1):
        parts = raw.split()
        starts_document = bool(parts) and parts[0] == "-DOCSTART-"
        if starts_document:
            parts = []
        if not parts:
            if tokens:
                sentences.append((tokens, tags, first, document))
            tokens, tags = [], []
            # A -DOCSTART- after some sentences opens the next document.
            document += int(starts_document and bool(sentences) and sentences[-1][3] == document)
            continue
        if len(parts) < 2:
            raise DataError(f"line {number}: '{raw.strip()}' has one column; CoNLL lines hold the token "
                            "first and its tag last, separated by spaces or tabs", file=path)
        if not tokens:
            first = number
        tokens.append(parts[0])
        tags.append(parts[-1])
    if tokens:
        sentences.append((tokens, tags, first, document))
    return pd.DataFrame({"tokens": [s[0] for s in sentences], "tags": [s[1] for s in sentences],
                         "line": [s[2] for s in sentences], "document": [s[3] for s in sentences]})


def _split_ref(path: str) -> tuple[str, str | None]:
    """Split ``folder#split`` into its parts, unless a file really has a '#' in its name."""
    if "#" in path and not Path(path).exists():
        location, _, split = path.rpartition("#")
        return location, split or None
    return path, None


def _detect_format(target: Path, path: str) -> str:
    if target.is_dir():
        if (target / _HF_DICT_FILE).is_file() or any((target / f).is_file() for f in _HF_DATASET_FILES):
            return "hf_disk"
        if any(target.glob("*.parquet")):
            return "parquet"  # a folder of Parquet parts, as Spark and pyarrow write them
        raise DataError("is a folder but not a dataset saved with datasets' save_to_disk "
                        "(no dataset_info.json, state.json or dataset_dict.json) and holds no "
                        "Parquet files; point to a data file or set data.format", file=path)
    fmt = SUFFIX_FORMATS.get(target.suffix.lower())
    if fmt is None:
        known = ", ".join(SUFFIX_FORMATS)
        raise DataError(f"cannot tell the format from the suffix '{target.suffix or '(none)'}' "
                        f"(known suffixes: {known}); set data.format to one of csv, jsonl, "
                        "parquet, conll, hf_disk or hub", file=path)
    return fmt


def _decode(target: Path, encoding: str, path: str) -> str:
    """The file's text. Decoding the whole byte string at once makes the error offset exact."""
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise DataError(f"unknown encoding '{encoding}'; set data.encoding to a Python codec "
                        "name such as utf-8, latin-1 or cp1252", file=path) from None
    data = target.read_bytes()
    if codec == "utf-8" and data.startswith(codecs.BOM_UTF8):
        codec = "utf-8-sig"  # Excel writes a BOM; without this it ends up in the first column name
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        bad = data[exc.start: exc.start + 1].hex()
        raise DataError(
            f"cannot decode the file as {encoding}: byte 0x{bad} at byte offset {exc.start} "
            f"(line {line}) is not valid {encoding} ({exc.reason}). The file uses another "
            "encoding: set data.encoding, e.g. `encoding: latin-1` (or cp1252 for Windows files)",
            file=path,
        ) from None


def _parse_csv(text: str, sep: str, path: str) -> pd.DataFrame:
    header = next(csv.reader(io.StringIO(text.split("\n", 1)[0]), delimiter=sep), [])
    _check_unique_columns([h.strip() for h in header], path)
    try:
        # dtype=str keeps "0012" as text; only empty cells are missing, so a text such as
        # "NA" or "None" stays a text instead of becoming a missing value.
        return pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False,
                           na_values=[""])
    except pd.errors.EmptyDataError:
        raise DataError("the file is empty (no header and no rows)", file=path) from None
    except (pd.errors.ParserError, ValueError) as exc:
        kind = "TSV" if sep == "\t" else "CSV"
        raise DataError(f"could not parse the file as {kind}: {str(exc).strip()}. Check the "
                        "delimiter and that texts holding commas, quotes or newlines are quoted",
                        file=path) from None


def _parse_jsonl(text: str, path: str) -> pd.DataFrame:
    """One JSON object per line; parsed here so a bad line is reported by its number."""
    if text.lstrip().startswith("["):
        # A .json file holding one array of objects: accept it rather than fail on line 1.
        try:
            records = json.loads(text, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as exc:
            raise DataError(f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                            file=path) from None
        except _DuplicateKey as exc:
            raise DataError(f"an object names the column '{exc.args[0]}' twice; which one is meant is "
                            "ambiguous, so rename or drop one", file=path, column=exc.args[0]) from None
        if isinstance(records, list) and records and all(isinstance(r, list) for r in records):
            return _positional(records, path)
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise DataError("a JSON array must hold one object per example (or one array per example, "
                            "read as columns '0', '1', ...)", file=path)
        for number, record in enumerate(records, start=1):
            _check_encodable(record, path, number)
        return pd.DataFrame.from_records(records)
    records = [json_record(line, number, path) for number, line in enumerate(text.splitlines(), start=1)
               if line.strip()]  # blank lines, e.g. a trailing newline, are not rows
    return pd.DataFrame.from_records(records)


def _positional(records: list[list[Any]], path: str) -> pd.DataFrame:
    """A JSON array of arrays (CFLEB's ``[text, label]`` items): columns named by position,
    ``'0'``, ``'1'``..., so a config says ``text_column: "0"``."""
    width = len(records[0])
    for number, record in enumerate(records, start=1):
        if len(record) != width:
            raise DataError(f"item {number} holds {len(record)} values where the first holds {width}; every "
                            "array must hold the same columns in the same order", file=path, row=number)
    return pd.DataFrame(records, columns=[str(i) for i in range(width)])


def json_record(line: str, number: int, path: str) -> dict[str, Any]:
    """Line ``number`` of a JSON Lines file as a row; a bad line is a DataError naming it."""
    try:
        record = json.loads(line, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise DataError(f"line {number} is not valid JSON ({exc.msg} at column {exc.colno}); "
                        "a JSON Lines file holds one JSON object per line", file=path) from None
    except _DuplicateKey as exc:
        raise DataError(f"line {number} names the column '{exc.args[0]}' twice; which one is meant is "
                        "ambiguous, so rename or drop one", file=path, column=exc.args[0]) from None
    except RecursionError:
        raise DataError(f"line {number} is nested too deeply to be a row of a table", file=path) from None
    if not isinstance(record, dict):
        raise DataError(f"line {number} holds a JSON {type(record).__name__}, not an object; "
                        'each line must look like {"text": "...", "label": "..."}', file=path)
    _check_encodable(record, path, number)
    return record


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different (json.loads keeps the last one silently)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _check_unique_columns(names: list[str], path: str) -> None:
    """Two columns of one name: pandas would rename the second ('a.1') and training would read
    the first without a word, so it is an error that names them."""
    twice = sorted(n for n, count in Counter(names).items() if count > 1)
    if twice:
        raise DataError(f"the header names {', '.join(repr(n) for n in twice)} more than once; which column "
                        "is meant is ambiguous, so rename or drop the duplicates", file=path, column=twice[0])


def _check_encodable(record: dict[str, Any], path: str, row: int) -> None:
    """JSON escapes can spell lone UTF-16 surrogates (\\ud800), which are not text: name the cell."""
    for key, value in record.items():
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise DataError("holds a lone UTF-16 surrogate (an escape such as \\ud800 without its pair), "
                                "which is not valid text; fix or drop that text", file=path, row=row,
                                column=key) from None
        elif isinstance(value, list):
            _check_encodable({f"{key}[{i}]": v for i, v in enumerate(value)}, path, row)


def _read_parquet(target: Path, path: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(target)
    except Exception as exc:  # pyarrow raises several unrelated types for a broken file
        raise DataError(f"could not read the file as Parquet: {exc}", file=path) from None


def _read_hf_disk(target: Path, split: str | None, path: str) -> pd.DataFrame:
    import datasets  # imported here: it is slow to import and most runs read plain files

    try:
        loaded = datasets.load_from_disk(str(target))
    except Exception as exc:
        raise DataError(f"could not load a dataset saved with save_to_disk from this folder: {exc}",
                        file=path) from None
    if isinstance(loaded, datasets.DatasetDict):
        name = split or "train"
        if name not in loaded:
            raise DataError(f"the DatasetDict has no split '{name}'; its splits are: "
                            f"{', '.join(loaded)}. Select one with '{target}#<split>'", file=path)
        loaded = loaded[name]
    elif split is not None:
        raise DataError(f"the folder holds a single Dataset, not a DatasetDict, so '#{split}' "
                        f"cannot select a split; use '{target}' alone", file=path)
    return loaded.to_pandas()


# ---------------------------------------------------------------- the Hub


def _read_hub(path: str) -> pd.DataFrame:
    dataset_id, _, split = path.partition("#")
    split = split or "train"
    try:
        import datasets

        loaded = datasets.load_dataset(dataset_id, split=split)
        return loaded.to_pandas()
    except Exception as exc:  # offline, unknown id, unknown split, gated repo: all the same advice
        raise DataError(
            f"could not load '{dataset_id}' (split '{split}') from the Hugging Face Hub: the Hub "
            f"could not be reached or the dataset was not found ({type(exc).__name__}: {exc}). "
            "Pass a local file instead (csv, jsonl, parquet or a save_to_disk folder) and set "
            "data.format accordingly",
            file=path,
        ) from None
