"""Public entry points: turn the files named in ``data`` into cleaned, labelled, split examples.

:func:`prepare_data` is for training (read, validate, clean, dedup, split, report);
:func:`load_examples` and :func:`frame_to_texts` read evaluation and prediction input with
the same column mapping and cleaning, so the model sees text prepared the same way.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fintune.config import DataConfig, Task
from fintune.data.clean import (
    clean_text, drop_duplicates_and_conflicts, is_missing, merge_conflicts, remove_overlap,
    serialize_row,
)
from fintune.data.load import read_table
from fintune.data.privacy import mask, masking_on, masking_report
from fintune.data.report import build_report
from fintune.data.split import carve, parse_dates
from fintune.data.windows import build_windows, window_columns
from fintune.errors import DataError

ROW_NOTE = "(rows count data rows from 1; the header is not counted)"
FEATURE_PREFIX = "feature:"  # raw feature columns ride along in the working frame under this prefix

# The config key that names each kind of column, for "set X to the right name" hints.
_ROLE_KEYS = {
    "text": "data.text_column",
    "instruction": "data.instruction_column",
    "pair": "data.pair_column",
    "tokens": "data.tokens_column",
    "feature": "data.feature_columns",
    "label": "data.label_column",
    "date": "data.date_column",
}


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
                        pick(self.rows), pick_list(self.instructions), pick_list(self.pairs), pick_list(self.tokens))


@dataclass
class PreparedData:
    """Everything training needs from the data section of the config."""

    train: Examples
    validation: Examples
    test: Examples | None
    label_names: list[str] | None  # None for regression; order = model's id2label
    report: dict  # the data quality report, JSON-serializable


# ---------------------------------------------------------------- public API


def prepare_data(
    cfg: DataConfig,
    task: Task,
    seed: int,
    count_tokens: Callable[[list[str]], list[int]] | None = None,
) -> PreparedData:
    """Read, validate, clean, dedup and split the training data; build the quality report.

    Validation/test files are used when given; whatever is missing is carved out of
    ``cfg.train`` by ``cfg.split`` (``test_size: 0`` means no test split).

    Raises:
        DataError: a file is unreadable, a column is missing, or a row has a bad text,
            label or date; the message names the file, row and column.
    """
    paths = {"train": cfg.train, "validation": cfg.validation, "test": cfg.test}
    frames: dict[str, pd.DataFrame] = {}
    raw_rows: dict[str, int] = {}
    duplicates = 0
    conflict_parts = []
    for split, path in paths.items():
        if path is None:
            continue
        table = load_table(path, cfg)
        raw_rows[split] = len(table)
        frame = _labelled_frame(table, cfg, task, source=path)
        frame, removed, conflicts = drop_duplicates_and_conflicts(frame, cfg.clean)
        duplicates += removed
        conflict_parts.append(conflicts)
        frames[split] = frame

    label_names = None
    if task == "classification":
        label_names = resolve_label_names(cfg, frames["train"]["label"].tolist(), cfg.train)
        known_from = _known_from(cfg)
        for split, frame in frames.items():
            frame["label"] = _label_ids(frame["label"].tolist(), frame["row"].tolist(),
                                        label_names, paths[split], cfg.label_column, known_from)

    carved = carve(
        frames["train"], cfg.split, seed, task,
        carve_validation=cfg.validation is None,
        carve_test=cfg.test is None and (cfg.split.test_size > 0 or cfg.split.fold is not None),
        source=cfg.train, label_names=label_names,
    )
    train = _sample(carved.train, cfg.split.max_train_rows, seed, task)
    validation = frames["validation"] if "validation" in frames else carved.validation
    test = frames["test"] if "test" in frames else carved.test
    assert validation is not None  # carve always makes validation when no file is given

    overlap = {"validation": 0, "test": 0}
    if cfg.clean.remove_overlap:
        validation, test, overlap = remove_overlap(train, validation, test)

    sources = {
        "train": cfg.train,
        "validation": cfg.validation or f"{cfg.train} [carved validation]",
        "test": cfg.test or f"{cfg.train} [carved test]",
    }
    _check_not_empty("train", train, sources["train"], raw_rows)
    _check_not_empty("validation", validation, sources["validation"], raw_rows)
    if test is not None:
        _check_not_empty("test", test, sources["test"], raw_rows)
    if label_names is not None:
        _check_two_classes(train, label_names, sources["train"], carved.method, cfg.label_column)

    splits = {
        "train": _to_examples(train, task, cfg, sources["train"]),
        "validation": _to_examples(validation, task, cfg, sources["validation"]),
        "test": _to_examples(test, task, cfg, sources["test"]) if test is not None else None,
    }
    # Only a time split promises no look-ahead; given files may break it, so say so.
    look_ahead = _look_ahead_note(splits) if cfg.split.method == "time" else None
    note = _join_notes(carved.note, look_ahead)
    report = build_report(
        task=task, splits=splits, label_names=label_names, raw_rows=raw_rows,
        duplicates_removed=duplicates, conflicts=merge_conflicts(conflict_parts),
        overlap_removed=overlap, split_method=carved.method, split_note=note,
        count_tokens=count_tokens,
    )
    report["privacy"] = masking_report((t for e in splits.values() if e is not None for t in e.texts), cfg)
    return PreparedData(splits["train"], splits["validation"], splits["test"], label_names, report)


def load_examples(
    path: str,
    cfg: DataConfig,
    task: Task,
    label_names: list[str] | None,
    require_labels: bool = True,
) -> Examples:
    """Read evaluation data or prediction input the way training data was read.

    Same column mapping and :func:`clean_text` as training; no dedup and no split. With
    ``require_labels`` false, labels are read only when the label column exists (else
    ``labels`` is None). Dates are parsed when ``cfg.date_column`` is set and present.

    Raises:
        DataError: as :func:`prepare_data`; also for a label the model was not trained on,
            naming the file, row, the label and the known labels.
    """
    table = load_table(path, cfg)
    texts = frame_to_texts(table, cfg, path)
    labels = None
    if require_labels or cfg.label_column in table.columns:
        check_columns(table, [(cfg.label_column, "label")], path)
        values = table[cfg.label_column]
        if task == "regression":
            labels = _targets(values, path, cfg.label_column)
        elif task == "generation":
            labels = _answers(values, cfg, path)
        else:
            if label_names is None:
                raise ValueError("load_examples needs label_names for classification")
            names = _map_labels(_label_texts(values), cfg, path, cfg.label_column)
            labels = _label_ids(names, list(range(1, len(names) + 1)), label_names, path,
                                cfg.label_column, "the labels the model was trained on")
    dates = None
    if cfg.date_column is not None and cfg.date_column in table.columns:
        dates = parse_dates(table[cfg.date_column], path, cfg.date_column)
    return Examples(texts, labels, dates, path, feature_frame(table, cfg, path), table.index.to_numpy(),
                    instructions_of(table, cfg, path), pairs_of(table, cfg, path))


def load_table(path: str, cfg: DataConfig) -> pd.DataFrame:
    """Read a data file; with ``data.windows``, turn the price table into windows first.

    The index holds each row's number in the file (from 1), which errors name.
    """
    table = read_table(path, cfg.format, cfg.encoding)
    if cfg.windows is not None:
        return build_windows(table, cfg, path)
    table.index = np.arange(1, len(table) + 1)
    return table


def input_columns(cfg: DataConfig) -> list[str]:
    """The feature columns the model reads: ``data.feature_columns``, or the window's columns."""
    if cfg.windows is not None:
        return window_columns(list(cfg.feature_columns or []), cfg.windows)
    return list(cfg.feature_columns or [])


def categorical_columns(cfg: DataConfig) -> list[str]:
    """Columns to one-hot although they may hold numbers (codes such as EDUCATION 1-6)."""
    return list(cfg.categorical_columns or [])


def feature_frame(table: pd.DataFrame, cfg: DataConfig, source: str) -> pd.DataFrame | None:
    """The raw feature columns of a table (None without feature columns)."""
    if cfg.feature_columns is None:
        return None
    columns = input_columns(cfg)
    check_columns(table, [(c, "feature") for c in columns], source)
    return table[columns]


def frame_to_texts(df: pd.DataFrame, cfg: DataConfig, source: str, first_row: int = 1) -> list[str]:
    """The model input of each row: the text column, or the serialized feature columns, cleaned.

    ``first_row`` is the file row of ``df``'s first row, so errors in a chunk name the
    right row. A missing, non-string or (after cleaning) empty text is a DataError.
    """
    if cfg.text_column is not None:
        check_columns(df, [(cfg.text_column, "text")], source)
        return [_clean_cell(value, cfg, source, first_row + pos)
                for pos, value in enumerate(df[cfg.text_column].tolist())]
    columns = input_columns(cfg)
    check_columns(df, [(c, "feature") for c in columns], source)
    values = zip(*(df[c].tolist() for c in columns))
    texts = [clean_text(serialize_row(dict(zip(columns, row)), columns, cfg.column_names, cfg.categories),
                        cfg.clean) for row in values]
    return [mask(t, cfg.privacy) for t in texts] if masking_on(cfg) else texts


def instructions_of(df: pd.DataFrame, cfg: DataConfig, source: str, first_row: int = 1) -> list[str] | None:
    """Generation: each row's instruction (``data.instruction_column``), cleaned like the text."""
    return _second_texts(df, cfg, cfg.instruction_column, "instruction", source, first_row)


def pairs_of(df: pd.DataFrame, cfg: DataConfig, source: str, first_row: int = 1) -> list[str] | None:
    """Text pairs: each row's second text (``data.pair_column``), cleaned like the text."""
    return _second_texts(df, cfg, cfg.pair_column, "pair", source, first_row)


def _second_texts(df: pd.DataFrame, cfg: DataConfig, column: str | None, role: str, source: str,
                  first_row: int) -> list[str] | None:
    if column is None:
        return None
    check_columns(df, [(column, role)], source)
    return [_clean_cell(value, cfg, source, first_row + pos, column) for pos, value in enumerate(df[column].tolist())]


def check_columns(df: pd.DataFrame, wanted: list[tuple[str, str]], source: str,
                  keys: dict[str, str] | None = None) -> None:
    """Raise a DataError for the first configured column the file lacks, with the nearest name.

    The message says which setting names the column: the config key of its role, or
    ``keys[role]`` (a CLI option such as ``--text-column``).
    """
    have = [str(c) for c in df.columns]
    for column, role in wanted:
        if column in df.columns:
            continue
        key = (keys or _ROLE_KEYS)[role]
        near = _nearest(column, have)
        hint = f" Did you mean '{near}'?" if near else ""
        raise DataError(
            f"{role} column '{column}' (set by {key}) not found; the file has columns: "
            f"{', '.join(have)}.{hint} Set {key} to one of the file's columns",
            file=source, column=column,
        )


def resolve_label_names(cfg: DataConfig, train_labels: list[str], source: str) -> list[str]:
    """The label order (the model's id2label): label_names, else label_map values, else sorted.

    Sorted labels use numeric order when every label is a number, so ``2`` comes before ``10``.
    """
    if cfg.label_names is not None:
        names = list(cfg.label_names)
    elif cfg.label_map is not None:
        names = list(dict.fromkeys(cfg.label_map.values()))
    else:
        unique = set(train_labels)
        numeric = all(_as_number(label) is not None for label in unique)
        names = sorted(unique, key=(lambda t: (_as_number(t), t)) if numeric else None)
    if len(set(train_labels)) < 2:
        found = ", ".join(f"'{n}'" for n in sorted(set(train_labels))) or "none"
        raise DataError(f"classification needs at least 2 different labels in the training data, "
                        f"found {found} in column '{cfg.label_column}'; use task: regression "
                        "for a numeric target", file=source, column=cfg.label_column)
    return names


# ---------------------------------------------------------------- building the frames


def _labelled_frame(table: pd.DataFrame, cfg: DataConfig, task: Task, source: str) -> pd.DataFrame:
    """Columns ``text``, ``label`` (label name or float target), ``row`` and maybe ``date``."""
    wanted = [(cfg.text_column, "text")] if cfg.text_column is not None else []
    if cfg.instruction_column is not None:
        wanted.append((cfg.instruction_column, "instruction"))
    if cfg.pair_column is not None:
        wanted.append((cfg.pair_column, "pair"))
    wanted += [(c, "feature") for c in input_columns(cfg)]
    wanted.append((cfg.label_column, "label"))
    if cfg.date_column is not None:
        wanted.append((cfg.date_column, "date"))
    check_columns(table, wanted, source)  # all columns first: a missing one is the likeliest fix

    texts = frame_to_texts(table, cfg, source)
    values = table[cfg.label_column]
    labels: Any
    if task == "regression":
        labels = _targets(values, source, cfg.label_column)
    elif task == "generation":
        labels = _answers(values, cfg, source)
    else:
        labels = _map_labels(_label_texts(values), cfg, source, cfg.label_column)
    frame = pd.DataFrame({"text": texts, "label": labels, "row": table.index.to_numpy()})
    instructions = instructions_of(table, cfg, source)
    if instructions is not None:
        # The same input under another instruction is another example (and not a conflict).
        frame["instruction"] = instructions
        frame["key"] = [i + "\x1f" + t for i, t in zip(instructions, texts)]
    pairs = pairs_of(table, cfg, source)
    if pairs is not None:
        # The same text about another target is another example (FiQA: one headline, two companies).
        frame["pair"] = pairs
        frame["key"] = [t + "\x1f" + p for t, p in zip(texts, pairs)]
    if cfg.date_column is not None:
        dates = parse_dates(table[cfg.date_column], source, cfg.date_column)
        frame["date"] = dates.reset_index(drop=True)  # frame has a fresh 0..n-1 index too
    features = feature_frame(table, cfg, source)
    if features is not None:
        for col in features.columns:
            frame[FEATURE_PREFIX + col] = features[col].to_numpy()
    if cfg.text_column is not None and features is not None:
        # Fusion: two rows with the same text but other features are different examples.
        frame["key"] = [t + "\x1f" + s for t, s in zip(texts, _serialized(features, cfg))]
    return frame


def _serialized(features: pd.DataFrame, cfg: DataConfig) -> list[str]:
    columns = list(features.columns)
    return [serialize_row(dict(zip(columns, row)), columns)
            for row in zip(*(features[c].tolist() for c in columns))]


def _clean_cell(value: Any, cfg: DataConfig, source: str, row: int, column: str | None = None) -> str:
    column = column or cfg.text_column
    if is_missing(value):
        raise DataError(f"missing text (empty cell or null); fill it in or remove the row {ROW_NOTE}",
                        file=source, row=row, column=column)
    if not isinstance(value, str):
        raise DataError(f"text must be a string, got {type(value).__name__} {value!r}; write it "
                        f'as a string (in JSON: "{value}") {ROW_NOTE}',
                        file=source, row=row, column=column)
    text = clean_text(value, cfg.clean)
    if masking_on(cfg):
        text = mask(text, cfg.privacy)
    if not text.strip():
        raise DataError(f"empty text (empty or only whitespace after cleaning); fill it in or "
                        f"remove the row {ROW_NOTE}", file=source, row=row, column=column)
    return text


def _to_examples(frame: pd.DataFrame, task: Task, cfg: DataConfig, source: str) -> Examples:
    labels = frame["label"].to_numpy(dtype=_LABEL_DTYPES[task])
    dates = frame["date"].reset_index(drop=True) if cfg.date_column is not None else None
    features = None
    if cfg.feature_columns is not None:
        columns = input_columns(cfg)
        features = pd.DataFrame({c: frame[FEATURE_PREFIX + c].to_numpy() for c in columns},
                                index=frame["row"].to_numpy())
    instructions = frame["instruction"].tolist() if "instruction" in frame.columns else None
    pairs = frame["pair"].tolist() if "pair" in frame.columns else None
    return Examples(frame["text"].tolist(), labels, dates, source, features, frame["row"].to_numpy(), instructions,
                    pairs)


_LABEL_DTYPES = {"classification": np.int64, "regression": np.float32, "generation": object}


def _sample(train: pd.DataFrame, rows: int | None, seed: int, task: Task) -> pd.DataFrame:
    """At most ``rows`` training rows, drawn after splitting so evaluation data is untouched."""
    if rows is None or len(train) <= rows:
        return train
    from sklearn.model_selection import train_test_split

    labels = train["label"].to_numpy()
    stratify = labels if task == "classification" and np.bincount(labels).min() >= 2 else None
    kept, _ = train_test_split(np.arange(len(train)), train_size=rows, random_state=seed, stratify=stratify)
    kept = np.sort(kept)  # keep time order for a time split
    return train.iloc[kept]


def _check_two_classes(train: pd.DataFrame, label_names: list[str], source: str, method: str,
                       column: str) -> None:
    present = sorted(set(train["label"].tolist()))
    if len(present) >= 2:
        return
    only = label_names[present[0]] if present else "none"
    raise DataError(f"the training split ({len(train)} rows, {method} split) holds only the label "
                    f"'{only}' in column '{column}'; a classifier needs at least two classes to learn. "
                    "Use a stratified split, a longer time range, or other files", file=source, column=column)


def _check_not_empty(split: str, frame: pd.DataFrame, source: str, raw_rows: dict[str, int]) -> None:
    if len(frame):
        return
    why = ("every row was a duplicate, a conflict, or also in an earlier split"
           if split in raw_rows else "the training file is too small")
    raise DataError(f"no {split} rows left after cleaning ({why}); add data, or set "
                    "data.clean.remove_overlap / drop_conflicts to false", file=source)


# ---------------------------------------------------------------- labels


def _label_texts(values: pd.Series) -> list[str | None]:
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


def _map_labels(texts: list[str | None], cfg: DataConfig, source: str, column: str) -> list[str]:
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
            near = _nearest(name, cfg.label_names)
            hint = f" Did you mean '{near}'?" if near else ""
            via = "" if cfg.label_map else " If the file holds label ids, map them with data.label_map."
            raise DataError(f"label '{name}' is not in data.label_names ({', '.join(cfg.label_names)})."
                            f"{hint}{via} {ROW_NOTE}", file=source, row=row, column=column)
        mapped.append(name)
    return mapped


def _label_ids(names: list[str], rows: list[int], label_names: list[str], source: str,
               column: str, known_from: str) -> np.ndarray:
    index = {name: i for i, name in enumerate(label_names)}
    ids = np.empty(len(names), dtype=np.int64)
    for pos, (name, row) in enumerate(zip(names, rows)):
        if name not in index:
            raise DataError(f"label '{name}' is not one of {known_from}: "
                            f"{', '.join(label_names)} {ROW_NOTE}", file=source, row=row, column=column)
        ids[pos] = index[name]
    return ids


def _known_from(cfg: DataConfig) -> str:
    if cfg.label_names is not None:
        return "data.label_names"
    if cfg.label_map is not None:
        return "the values of data.label_map"
    return f"the labels in the training data ({cfg.train}); known labels are"


def _answers(values: pd.Series, cfg: DataConfig, source: str) -> np.ndarray:
    """Generation: the reference answers, cleaned (and masked) like the input text."""
    # A JSON or CSV answer such as 3 or 0.5 is read as a number; it is still the answer's text.
    items = [_number_text(float(v)) if _as_number(v) is not None and not isinstance(v, str) else v
             for v in values.tolist()]
    answers = [_clean_cell(value, cfg, source, pos + 1, cfg.label_column) for pos, value in enumerate(items)]
    return np.array(answers, dtype=object)


def _targets(values: pd.Series, source: str, column: str) -> np.ndarray:
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


# ---------------------------------------------------------------- small helpers


def _nearest(name: str, options: list[str]) -> str | None:
    """The closest option, case-insensitively first ('Text' for 'text')."""
    for option in options:
        if option.lower() == name.lower():
            return option
    near = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    if near:
        return near[0]
    lowered = {o.lower(): o for o in options}
    near = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[near[0]] if near else None


def _look_ahead_note(splits: dict[str, Examples | None]) -> str | None:
    """With given files, warn when an evaluation split has dates not later than train's."""
    train = splits["train"]
    if train is None or train.dates is None or len(train.dates) == 0:
        return None
    latest = train.dates.max()
    late = [name for name in ("validation", "test")
            if (ex := splits[name]) is not None and ex.dates is not None and len(ex.dates)
            and ex.dates.min() <= latest]
    if not late:
        return None
    return f"{' and '.join(late)} has dates not later than the last training date {latest}"


def _join_notes(*notes: str | None) -> str | None:
    kept = [n for n in notes if n]
    return "; ".join(kept) if kept else None
