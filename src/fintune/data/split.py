"""Carve validation and test sets out of the training file: stratified, random, or by time.

Sizes are fractions of the whole training file. A time split never lets one date fall into
two splits, so every validation date is later than every training date (no look-ahead).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from fintune.tasks import task_of
from fintune.config import SplitConfig, Task
from fintune.data.clean import is_missing
from fintune.errors import ConfigError, DataError


@dataclass
class Carved:
    """The result of :func:`carve`: the splits, the method used and why it differs, if it does."""

    train: pd.DataFrame
    validation: pd.DataFrame | None
    test: pd.DataFrame | None
    method: str
    note: str | None = None


def carve(
    frame: pd.DataFrame,
    cfg: SplitConfig,
    seed: int,
    task: Task,
    *,
    carve_validation: bool,
    carve_test: bool,
    source: str,
    label_names: list[str] | None = None,
) -> Carved:
    """Split ``frame`` (columns ``text``, ``label``, optional ``date``) into the missing splits.

    ``label`` holds label ids for classification (used to stratify). With ``carve_test`` false
    (a test file is given, or ``test_size`` is 0) no test split is made; likewise validation.
    """
    if not (carve_validation or carve_test):
        return Carved(frame, None, None, method="files")
    if cfg.fold is not None:
        if cfg.method != "time" or not carve_validation:
            raise ConfigError("data.split.fold (walk-forward) needs data.split.method: time and no "
                              "data.validation/data.test files")
        return _walk_forward(frame, cfg, source)
    if carve_validation and carve_test and cfg.validation_size + cfg.test_size >= 1:
        raise ConfigError("data.split.validation_size + data.split.test_size must be below 1 "
                          f"(got {cfg.validation_size} + {cfg.test_size})")
    n = len(frame)
    n_val = max(1, round(cfg.validation_size * n)) if carve_validation else 0
    n_test = max(1, round(cfg.test_size * n)) if carve_test else 0
    if n - n_val - n_test < 1:
        raise DataError(f"has {n} usable rows, too few to carve {n_val} validation and {n_test} "
                        "test rows and keep any for training; add data or give data.validation "
                        "(and data.test) files", file=source)
    if cfg.method == "time":
        return _time_split(frame, n_val, n_test, source, cfg.gap)
    if cfg.method == "stratified":
        if not task_of(task).stratified:
            note = f"stratified split needs classes; {task} labels were split at random"
        else:
            try:
                return _random_split(frame, n_val, n_test, seed, "stratified", stratify=True)
            except ValueError as exc:
                note = (f"stratified split impossible ({_too_few(frame, label_names) or exc}); "
                        "used a random split instead")
        carved = _random_split(frame, n_val, n_test, seed, "random", stratify=False)
        carved.note = note
        return carved
    return _random_split(frame, n_val, n_test, seed, "random", stratify=False)


def _too_few(frame: pd.DataFrame, label_names: list[str] | None) -> str | None:
    """Name the classes with fewer than 2 rows: the usual reason sklearn refuses to stratify."""
    counts = frame["label"].value_counts()
    small = counts[counts < 2]
    if small.empty:
        return None
    names = [label_names[i] if label_names else str(i) for i in small.index]
    return "too few rows in class " + ", ".join(f"'{name}' ({c} row)" for name, c in
                                                zip(names, small.tolist()))


def _random_split(frame: pd.DataFrame, n_val: int, n_test: int, seed: int, method: str,
                  stratify: bool) -> Carved:
    labels = frame["label"].to_numpy()
    rest = np.arange(len(frame))
    test_idx = val_idx = None
    if n_test:
        rest, test_idx = train_test_split(rest, test_size=n_test, random_state=seed,
                                          stratify=labels[rest] if stratify else None)
    if n_val:
        rest, val_idx = train_test_split(rest, test_size=n_val, random_state=seed,
                                         stratify=labels[rest] if stratify else None)
    validation = None if val_idx is None else frame.iloc[val_idx]
    test = None if test_idx is None else frame.iloc[test_idx]
    return Carved(frame.iloc[rest], validation, test, method=method)


def _time_split(frame: pd.DataFrame, n_val: int, n_test: int, source: str, gap: int = 0) -> Carved:
    """Earliest rows train, then validation, latest test; cuts only between different dates.

    ``gap`` rows before each cut are dropped, so a target computed over the next steps
    never overlaps the period the next split is scored on.
    """
    ordered = frame.sort_values("date", kind="stable")
    sizes = [len(ordered) - n_val - n_test] + [s for s in (n_val, n_test) if s]
    parts = _cut_by_date(ordered, sizes, source)
    if gap:
        parts = [p.iloc[:max(len(p) - gap, 0)] for p in parts[:-1]] + [parts[-1]]
    _check_time_parts(parts, ["train", *(["validation"] if n_val else []), *(["test"] if n_test else [])],
                      source, gap)
    train, rest = parts[0], parts[1:]
    validation = rest.pop(0) if n_val else None
    test = rest.pop(0) if n_test else None
    return Carved(train, validation, test, method="time")


MIN_TIME_PART = 2  # rows; fewer cannot be scored (or trained on) in any meaningful way


def _check_time_parts(parts: list[pd.DataFrame], names: list[str], source: str, gap: int) -> None:
    sizes = ", ".join(f"{name} {len(part)}" for name, part in zip(names, parts))
    if min(len(p) for p in parts) < MIN_TIME_PART:
        after_gap = f" after dropping {gap} gap row(s) at each cut" if gap else ""
        raise DataError(f"a time split gives {sizes} rows{after_gap}; every part needs at least "
                        f"{MIN_TIME_PART}. Add rows, raise data.split.validation_size/test_size, "
                        "or lower data.split.folds or gap", file=source)


def _walk_forward(frame: pd.DataFrame, cfg: SplitConfig, source: str) -> Carved:
    """Fold k of an expanding-window walk-forward: test on time block k + 1 of folds + 1.

    Training (and its validation tail) is every block before the test block, so each
    fold is scored only on dates later than all it trained on, as in production.
    """
    assert cfg.fold is not None
    if cfg.fold >= cfg.folds:
        raise ConfigError(f"data.split.fold {cfg.fold} must be below data.split.folds ({cfg.folds})")
    ordered = frame.sort_values("date", kind="stable")
    n, blocks = len(ordered), cfg.folds + 1
    sizes = [n // blocks + (1 if i < n % blocks else 0) for i in range(blocks)]
    parts = _cut_by_date(ordered, sizes, source)
    history = pd.concat(parts[:cfg.fold + 1])
    n_val = max(1, round(cfg.validation_size * len(history)))
    carved = _time_split(history, n_val, 0, source, cfg.gap)
    test = parts[cfg.fold + 1]
    if cfg.gap and carved.validation is not None:
        carved.validation = carved.validation.iloc[:max(len(carved.validation) - cfg.gap, 0)]
    _check_time_parts([carved.train, carved.validation, test], ["train", "validation", "test"],
                      source, cfg.gap)
    return Carved(carved.train, carved.validation, test, method=f"walk-forward fold {cfg.fold + 1}/{cfg.folds}")


def _cut_by_date(ordered: pd.DataFrame, sizes: list[int], source: str) -> list[pd.DataFrame]:
    """Cut date-sorted rows into parts of about ``sizes`` rows, only where the date changes."""
    dates = ordered["date"].to_numpy()
    # Positions where the date changes: the only places a cut may go.
    boundaries = (np.flatnonzero(dates[1:] != dates[:-1]) + 1).tolist()
    n = len(ordered)
    targets = np.cumsum(sizes)[:-1].tolist()
    if len(boundaries) < len(targets):
        raise DataError(
            f"has only {len(boundaries) + 1} distinct date(s); a time split into "
            f"{len(sizes)} parts needs at least {len(sizes)} because one date is never split "
            "across train/validation/test. Use data.split.method: stratified or give files",
            file=source,
        )
    cuts: list[int] = []
    upper = len(boundaries)  # cuts are chosen from the last one down, each below the one after it
    for k in range(len(targets) - 1, -1, -1):
        candidates = boundaries[k:upper]  # leave k boundaries below for the earlier cuts
        best = min(range(len(candidates)), key=lambda i: abs(candidates[i] - targets[k]))
        cuts.insert(0, candidates[best])
        upper = k + best
    edges = [0, *cuts, n]
    return [ordered.iloc[a:b] for a, b in zip(edges[:-1], edges[1:])]


# ---------------------------------------------------------------- dates


def parse_dates(values: pd.Series, file: str, column: str, first_row: int = 1) -> pd.Series:
    """Parse a date column with pandas; an empty or unparseable date is a DataError with its row.

    Values are parsed as text so an integer such as 20240131 is read as a date, not as
    nanoseconds since 1970.
    """
    values = values.reset_index(drop=True)
    for pos, value in enumerate(values.tolist()):
        if is_missing(value) or (isinstance(value, str) and not value.strip()):
            raise DataError("empty date; every row needs a date when data.date_column is set",
                            file=file, row=first_row + pos, column=column)
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    text = values.map(str)
    parsed = _to_datetime(text, format=None)
    if parsed.isna().any():
        # pandas infers one format from the first value; retry per value for mixed formats.
        parsed = _to_datetime(text, format="mixed")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        pos = int(bad[0])
        raise DataError(f"cannot parse '{text[pos]}' as a date; write dates like 2024-01-31 "
                        "(or 2024-01-31 16:00)", file=file, row=first_row + pos, column=column)
    return parsed


def _to_datetime(text: pd.Series, format: str | None) -> pd.Series:
    with warnings.catch_warnings():
        # "Could not infer format" is pandas talking to itself; a failure is reported by row.
        warnings.simplefilter("ignore", UserWarning)
        try:
            return pd.to_datetime(text, errors="coerce", format=format)
        except (ValueError, TypeError):
            # Mixed time zones (or aware and naive together) only compare once all are in UTC.
            return pd.to_datetime(text, errors="coerce", format=format, utc=True)
