"""Public entry points: turn the files named in ``data`` into cleaned, labelled, split examples.

:func:`prepare_data` is for training (read, validate, clean, dedup, split, report);
:func:`load_examples` and :func:`frame_to_texts` read evaluation and prediction input with
the same column mapping and cleaning, so the model sees text prepared the same way.
"""

from __future__ import annotations

import json

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from fintune.config import DataConfig, Task
from fintune.tasks import task_of
from fintune.data.clean import (
    drop_duplicates_and_conflicts, merge_conflicts, remove_overlap,
)
from fintune.data.columns import (
    FEATURE_PREFIX, check_columns, conversations_of, feature_frame, frame_to_texts, input_columns,
    instructions_of, load_table, pairs_of,
    serialized_rows,
)
from fintune.data.examples import Examples, PreparedData
from fintune.data.labels import (
    answer_texts, known_labels_hint, label_ids, label_order, label_texts, map_labels, resolve_label_names,
    target_values,
)
from fintune.data.label_sets import label_matrix, label_sets
from fintune.data.privacy import masking_report
from fintune.data.report import build_report
from fintune.data.split import carve, parse_dates
from fintune.errors import DataError


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
    frames, raw_rows, duplicates, conflict_parts = _read_files(paths, cfg, task)
    label_names = _LABEL_IDS[task_of(task).answer](frames, paths, cfg) if task_of(task).answer in _LABEL_IDS else None

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
    if task_of(task).answer == "class" and label_names is not None:
        _check_two_classes(train, label_names, sources["train"], carved.method, cfg.label_column)

    splits = {
        "train": _to_examples(train, task, cfg, sources["train"]),
        "validation": _to_examples(validation, task, cfg, sources["validation"]),
        "test": _to_examples(test, task, cfg, sources["test"]) if test is not None else None,
    }
    issues = None
    if cfg.clean.drop_label_issues:
        splits["train"], issues = _without_label_issues(splits["train"], cfg, task, label_names, seed)
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
    if issues is not None:
        report["label_issues"] = issues
    return PreparedData(splits["train"], splits["validation"], splits["test"], label_names, report)


def _read_files(paths: dict[str, str | None], cfg: DataConfig, task: Task
                ) -> tuple[dict[str, pd.DataFrame], dict[str, int], int, list[Any]]:
    """Each given file as a labelled frame, duplicates and conflicting labels dropped; its raw
    row count, the duplicates removed in all, and each file's conflicts."""
    frames: dict[str, pd.DataFrame] = {}
    raw_rows: dict[str, int] = {}
    duplicates = 0
    conflict_parts = []
    for split, path in paths.items():
        if path is None:
            continue
        table = load_table(path, cfg)
        raw_rows[split] = len(table)
        frame = _labelled_frame(table, cfg, task, source=path, weighted=split == "train")
        frame, removed, conflicts = drop_duplicates_and_conflicts(frame, cfg.clean)
        duplicates += removed
        conflict_parts.append(conflicts)
        frames[split] = frame
    return frames, raw_rows, duplicates, conflict_parts


def _class_ids(frames: dict[str, pd.DataFrame], paths: dict[str, str | None], cfg: DataConfig) -> list[str]:
    """The class names (from the training labels and the config), every frame's labels turned
    into their ids in place."""
    label_names = resolve_label_names(cfg, frames["train"]["label"].tolist(), cfg.train)
    known_from = known_labels_hint(cfg)
    for split, frame in frames.items():
        frame["label"] = label_ids(frame["label"].tolist(), frame["row"].tolist(),
                                   label_names, paths[split], cfg.label_column, known_from)
    return label_names


def _label_set_ids(frames: dict[str, pd.DataFrame], paths: dict[str, str | None], cfg: DataConfig) -> list[str]:
    """Multi-label: the label names (the training labels' union, or the config's), every frame's
    label sets turned into rows of 0/1 in place."""
    label_names = label_order(cfg, [name for labels in frames["train"]["label"] for name in labels])
    known_from = known_labels_hint(cfg)
    for split, frame in frames.items():
        matrix = label_matrix(frame["label"].tolist(), frame["row"].tolist(), label_names, paths[split] or "",
                              cfg.label_column, known_from)
        frame["label"] = [tuple(row) for row in matrix.tolist()]
    return label_names


_LABEL_IDS: dict[str, Callable[[dict[str, pd.DataFrame], dict[str, str | None], DataConfig], list[str]]] = {
    "class": _class_ids, "labels": _label_set_ids}


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
    if cfg.messages_column is not None:  # conversations: the last turn, the assistant's, is the reference
        conversations = conversations_of(table, cfg, path, answered=True if require_labels else None) or []
        answered = bool(conversations) and conversations[0][-1]["role"] == "assistant"
        contexts = [c[:-1] for c in conversations] if answered else conversations
        labels = np.array([c[-1]["content"] for c in conversations], dtype=object) if answered else None
        return Examples([c[-1]["content"] for c in contexts], labels, None, path, None, table.index.to_numpy(),
                        parts={"messages": contexts})
    texts = frame_to_texts(table, cfg, path)
    labels = None
    if require_labels or cfg.label_column in table.columns:
        check_columns(table, [(cfg.label_column, "label")], path)
        values = table[cfg.label_column]
        answer = task_of(task).answer
        if answer == "value":
            labels = target_values(values, path, cfg.label_column)
        elif answer == "text":
            labels = answer_texts(values, cfg, path)
        elif answer == "labels":
            if label_names is None:
                raise ValueError("load_examples needs label_names for multi_label")
            sets = label_sets(values, cfg, path, cfg.label_column)
            labels = label_matrix(sets, list(range(1, len(sets) + 1)), label_names, path, cfg.label_column,
                                  "the labels the model was trained on")
        else:
            if label_names is None:
                raise ValueError("load_examples needs label_names for classification")
            names = map_labels(label_texts(values), cfg, path, cfg.label_column)
            labels = label_ids(names, list(range(1, len(names) + 1)), label_names, path,
                                cfg.label_column, "the labels the model was trained on")
    dates = None
    if cfg.date_column is not None and cfg.date_column in table.columns:
        dates = parse_dates(table[cfg.date_column], path, cfg.date_column)
    return Examples(texts, labels, dates, path, feature_frame(table, cfg, path), table.index.to_numpy(),
                    parts={"instructions": instructions_of(table, cfg, path), "pairs": pairs_of(table, cfg, path)})


def _without_label_issues(train: Examples, cfg: DataConfig, task: Task, label_names: list[str] | None,
                          seed: int) -> tuple[Examples, dict[str, Any]]:
    """The training split less the rows cleanlab flags (data.clean.drop_label_issues)."""
    if task_of(task).answer != "class" or label_names is None:
        raise DataError("data.clean.drop_label_issues is for classification labels; turn it off for "
                        f"task {task}", file=cfg.train)
    from fintune.data.label_issues import find_label_issues

    issues = find_label_issues(train, label_names, seed=seed, text=cfg.text_column is not None)
    keep = np.setdiff1d(np.arange(len(train)), issues.positions)
    return train.take(keep), {**issues.summary(), "dropped": len(train) - len(keep)}


# ---------------------------------------------------------------- building the frames


def _labelled_frame(table: pd.DataFrame, cfg: DataConfig, task: Task, source: str,
                    weighted: bool = True) -> pd.DataFrame:
    """Columns ``text``, ``label`` (label name or float target), ``row`` and maybe ``date``;
    ``weight`` too when ``weighted`` (the training file: validation and test are unweighted)."""
    wanted = [(cfg.text_column, "text")] if cfg.text_column is not None else []
    if cfg.instruction_column is not None:
        wanted.append((cfg.instruction_column, "instruction"))
    if cfg.pair_column is not None:
        wanted.append((cfg.pair_column, "pair"))
    if cfg.weight_column is not None and weighted:
        wanted.append((cfg.weight_column, "weight"))
    if cfg.rejected_column is not None and weighted:  # pairs train; evaluation scores answers
        wanted.append((cfg.rejected_column, "rejected"))
    wanted += [(c, "feature") for c in input_columns(cfg)]
    wanted.append((cfg.messages_column, "messages") if cfg.messages_column else (cfg.label_column, "label"))
    if cfg.date_column is not None:
        wanted.append((cfg.date_column, "date"))
    check_columns(table, wanted, source)  # all columns first: a missing one is the likeliest fix

    labels: Any
    conversations = conversations_of(table, cfg, source)
    if conversations is not None:
        # The context (every turn before the last answer) is the record's key and input; the
        # last answer is its reference.
        texts = [json.dumps(c[:-1], ensure_ascii=False) for c in conversations]
        labels = np.array([c[-1]["content"] for c in conversations], dtype=object)
    else:
        texts = frame_to_texts(table, cfg, source)
        labels = _labels_of(table[cfg.label_column], task, cfg, source)
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
    if cfg.weight_column is not None and weighted:
        frame["weight"] = row_weights(table[cfg.weight_column], source, cfg.weight_column)
    if cfg.rejected_column is not None and weighted:
        # Cleaned like the chosen answer; the same prompt with another pair is another example.
        frame["rejected"] = answer_texts(table[cfg.rejected_column], cfg.model_copy(
            update={"label_column": cfg.rejected_column}), source)
        frame["key"] = [t + "\x1f" + str(c) + "\x1f" + str(r)
                        for t, c, r in zip(frame.get("key", frame["text"]), labels, frame["rejected"])]
    features = feature_frame(table, cfg, source)
    if features is not None:
        for col in features.columns:
            frame[FEATURE_PREFIX + col] = features[col].to_numpy()
    if cfg.text_column is not None and features is not None:
        # Fusion: two rows with the same text but other features are different examples.
        frame["key"] = [t + "\x1f" + s for t, s in zip(texts, serialized_rows(features, cfg))]
    return frame


def _labels_of(values: pd.Series, task: Task, cfg: DataConfig, source: str) -> Any:
    """The label column as the task reads it: targets, answers, or label names."""
    answer = task_of(task).answer
    if answer == "value":
        return target_values(values, source, cfg.label_column)
    if answer == "text":
        return answer_texts(values, cfg, source)
    if answer == "labels":
        return label_sets(values, cfg, source, cfg.label_column)
    return map_labels(label_texts(values), cfg, source, cfg.label_column)


def _to_examples(frame: pd.DataFrame, task: Task, cfg: DataConfig, source: str) -> Examples:
    if task_of(task).answer == "labels":  # tuples of 0/1, one per label name
        labels = np.asarray(frame["label"].tolist(), dtype=np.float32).reshape(len(frame), -1)
    else:
        labels = frame["label"].to_numpy(dtype=_LABEL_DTYPES[task_of(task).answer])
    dates = frame["date"].reset_index(drop=True) if cfg.date_column is not None else None
    features = None
    if cfg.feature_columns is not None:
        columns = input_columns(cfg)
        features = pd.DataFrame({c: frame[FEATURE_PREFIX + c].to_numpy() for c in columns},
                                index=frame["row"].to_numpy())
    instructions = frame["instruction"].tolist() if "instruction" in frame.columns else None
    pairs = frame["pair"].tolist() if "pair" in frame.columns else None
    weights = frame["weight"].to_numpy(dtype=np.float32) if "weight" in frame.columns else None
    rejected = frame["rejected"].to_numpy(dtype=object) if "rejected" in frame.columns else None
    texts, messages = frame["text"].tolist(), None
    if cfg.messages_column is not None:  # texts hold each context as JSON (see _labelled_frame)
        messages = [json.loads(t) for t in texts]
        texts = [m[-1]["content"] for m in messages]
    return Examples(texts, labels, dates, source, features, frame["row"].to_numpy(), weights,
                    {"instructions": instructions, "pairs": pairs, "rejected": rejected, "messages": messages})


def row_weights(values: pd.Series, source: str, column: str) -> np.ndarray:
    """Training weights: numbers >= 0; a missing, negative or non-numeric one is a DataError."""
    weights = target_values(values, source, column)
    bad = np.flatnonzero(~np.isfinite(weights) | (weights < 0))
    if len(bad):
        raise DataError(f"row weight {weights[bad[0]]} is not a number >= 0 (data.weight_column)",
                        file=source, row=int(bad[0]) + 1, column=column)
    return weights


_LABEL_DTYPES = {"class": np.int64, "value": np.float32, "text": object}


def _sample(train: pd.DataFrame, rows: int | None, seed: int, task: Task) -> pd.DataFrame:
    """At most ``rows`` training rows, drawn after splitting so evaluation data is untouched."""
    if rows is None or len(train) <= rows:
        return train
    from sklearn.model_selection import train_test_split

    labels = train["label"].to_numpy()
    stratify = labels if task_of(task).stratified and np.bincount(labels).min() >= 2 else None
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


# ---------------------------------------------------------------- small helpers


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
