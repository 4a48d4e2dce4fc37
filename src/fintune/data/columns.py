"""Column mapping: which columns of a table a model reads, and how each cell becomes input.

Training, evaluation and prediction all read tables through these functions, so a model
sees its input prepared the same way at every stage.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fintune.config import DataConfig
from fintune.data.clean import clean_text, is_missing, serialize_row
from fintune.data.load import read_table
from fintune.data.privacy import mask, masking_on
from fintune.data.relations import mark_entities
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
    "weight": "data.weight_column",
    "rejected": "data.rejected_column",
    "messages": "data.messages_column",
}

# ShareGPT's speakers in OpenAI's roles.
ROLE_NAMES = {"system": "system", "user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant"}


def load_table(path: str, cfg: DataConfig) -> pd.DataFrame:
    """Read a data file; with ``data.windows``, turn the price table into windows first.

    The index holds each row's number in the file (from 1), which errors name. With
    ``data.files``, each row's file (or each file of a folder) is read into the text column.
    """
    if cfg.files is not None:
        from fintune.data.ingest import files_table

        return files_table(path, cfg)
    table = read_table(path, cfg.format, cfg.encoding)
    if cfg.windows is not None:
        return build_windows(table, cfg, path)
    table.index = np.arange(1, len(table) + 1)
    return table


def _files_read(df: pd.DataFrame, cfg: DataConfig, source: str, first_row: int) -> pd.DataFrame:
    """A frame of file paths (a model's ``predict`` on a DataFrame, a server request's rows) with
    each file read into the text column; a file that cannot be read is a DataError naming it,
    since every row given must get its prediction."""
    from fintune.data.ingest import ingest_table

    assert cfg.files is not None and cfg.text_column is not None
    numbered = df.set_axis(np.arange(first_row, first_row + len(df)))  # the rows errors name
    read = ingest_table(numbered, [Path(str(v)) for v in df[cfg.files.column]],
                        cfg.files.model_copy(update={"on_error": "fail"}), cfg.text_column, source)
    return read.set_axis(df.index)


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


def conversations_of(df: pd.DataFrame, cfg: DataConfig, source: str, first_row: int = 1,
                     answered: bool | None = True) -> list[list[dict[str, str]]] | None:
    """Each row's conversation (``data.messages_column``) as role/content turns, every content
    cleaned like a text; None without the column. ``answered``: the last turn must be the
    assistant's (training and evaluation), or the user's (False: a question to answer); None:
    either, as the first row has it, the same in every row."""
    column = cfg.messages_column
    if column is None:
        return None
    check_columns(df, [(column, "messages")], source)
    out = []
    for pos, value in enumerate(df[column].tolist()):
        row = first_row + pos
        if isinstance(value, str):  # a CSV cell: the conversation as JSON text
            try:
                value = json.loads(value)
            except ValueError:
                value = None
        turns = list(value) if isinstance(value, (list, tuple, np.ndarray)) else None
        if not turns:
            raise DataError("a conversation must be a list of turns ({'role': 'user', 'content': ...} or ShareGPT's "
                            f"{{'from': 'human', 'value': ...}}) {ROW_NOTE}", file=source, row=row, column=column)
        conversation = []
        for turn in turns:
            role = ROLE_NAMES.get(str(turn.get("role", turn.get("from")))) if isinstance(turn, dict) else None
            if role is None:
                raise DataError(f"a turn needs a role ({', '.join(ROLE_NAMES)}) and a content {ROW_NOTE}",
                                file=source, row=row, column=column)
            content = clean_cell(turn.get("content", turn.get("value")), cfg, source, row, column)
            conversation.append({"role": role, "content": content})
        if answered is None:  # the first conversation decides for the file
            answered = conversation[-1]["role"] == "assistant"
        last = "assistant" if answered else "user"
        if conversation[-1]["role"] != last or not any(t["role"] == "user" for t in conversation):
            raise DataError(f"a conversation must hold a user turn and end with the {last}'s {ROW_NOTE}",
                            file=source, row=row, column=column)
        out.append(conversation)
    return out


def frame_to_texts(df: pd.DataFrame, cfg: DataConfig, source: str, first_row: int = 1) -> list[str]:
    """The model input of each row: the text column, or the serialized feature columns, cleaned.

    ``first_row`` is the file row of ``df``'s first row, so errors in a chunk name the
    right row. A missing, non-string or (after cleaning) empty text is a DataError.
    """
    if cfg.text_column is not None:
        if cfg.files is not None and cfg.text_column not in df.columns and cfg.files.column in df.columns:
            df = _files_read(df, cfg, source, first_row)
        check_columns(df, [(cfg.text_column, "text")], source)
        texts = [clean_cell(value, cfg, source, first_row + pos)
                 for pos, value in enumerate(df[cfg.text_column].tolist())]
        if cfg.entity_columns is None:
            return texts
        # Relations: the two entities, cleaned like the text, marked where the text names them.
        head, tail = (_second_texts(df, cfg, column, "entity", source, first_row) or []
                      for column in cfg.entity_columns)
        return [mark_entities(t, h, e) for t, h, e in zip(texts, head, tail)]
    if cfg.messages_column is not None:  # the last user turn stands for the record in reports
        conversations = conversations_of(df, cfg, source, first_row, answered=False)
        return [c[-1]["content"] for c in conversations or []]
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
    return [clean_cell(value, cfg, source, first_row + pos, column) for pos, value in enumerate(df[column].tolist())]


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
        near = nearest_name(column, have)
        hint = f" Did you mean '{near}'?" if near else ""
        raise DataError(
            f"{role} column '{column}' (set by {key}) not found; the file has columns: "
            f"{', '.join(have)}.{hint} Set {key} to one of the file's columns",
            file=source, column=column,
        )


def serialized_rows(features: pd.DataFrame, cfg: DataConfig) -> list[str]:
    columns = list(features.columns)
    return [serialize_row(dict(zip(columns, row)), columns)
            for row in zip(*(features[c].tolist() for c in columns))]


def clean_cell(value: Any, cfg: DataConfig, source: str, row: int, column: str | None = None) -> str:
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


def nearest_name(name: str, options: list[str]) -> str | None:
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
