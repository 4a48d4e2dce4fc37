"""Text cleaning, tabular serialization, and removal of duplicates, conflicts and overlap.

The same :func:`clean_text` runs on training, evaluation and prediction input, so a model
never sees text at prediction time that was cleaned differently from what it trained on.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from fintune.config import CleanConfig

# http(s):// or www. up to whitespace, leaving trailing sentence punctuation outside the URL.
URL_RE = re.compile(r"(?:https?://|www\.)\S+?(?=[.,;:!?)\]}'\"]*(?:\s|$))", re.IGNORECASE)
# Cashtags: $ and 1-6 letters, with an optional share class (.B); "$100" is money, not a ticker.
TICKER_RE = re.compile(r"(?<![\w$])\$[A-Za-z]{1,6}(?:\.[A-Za-z]{1,2})?\b")

MAX_CONFLICT_EXAMPLES = 5
_EXAMPLE_CHARS = 200  # conflict examples go into a report; keep long texts readable


def clean_text(text: str, cfg: CleanConfig) -> str:
    """Normalize one text: NFKC, URLs -> ``URL``, cashtags -> ``TICKER``, whitespace collapsed.

    NFKC runs first so full-width characters (``＄ＡＡＰＬ``) become ASCII before the
    patterns look for them; URLs are replaced before tickers because a URL may hold a ``$``.
    """
    if cfg.unicode_nfkc:
        text = unicodedata.normalize("NFKC", text)
    if cfg.replace_urls:
        text = URL_RE.sub("URL", text)
    if cfg.replace_tickers:
        text = TICKER_RE.sub("TICKER", text)
    if cfg.whitespace:
        text = " ".join(text.split())
    return text


def is_missing(value: Any) -> bool:
    """True for None, NaN, pd.NA and NaT; False for everything else, lists included."""
    if value is None:
        return True
    if isinstance(value, (list, tuple, dict, set, np.ndarray)):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def format_value(value: Any) -> str:
    """One cell as text a person would write: ``1,169``, ``0.1235``, ``true``, ``missing``.

    Whole numbers print without ``.0``, with thousands separators from 10,000 up (so a
    year stays ``1994``); other numbers keep four significant digits (two decimals from
    1000 up), which is what a reader, and a tokenizer, can use; tiny and huge values fall
    back to scientific notation.
    """
    if is_missing(value):
        return "missing"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (int, np.integer)):
        return _format_int(int(value))
    if isinstance(value, (float, np.floating)):
        return _format_float(float(value))
    if isinstance(value, (pd.Timestamp, datetime, date)):
        return value.isoformat()
    text = str(value).strip()
    return text if text else "missing"


def _format_float(number: float) -> str:
    # A float column that holds whole numbers (often because of NaNs) still prints as ints.
    if math.isfinite(number) and number.is_integer() and abs(number) < 1e15:
        return _format_int(int(number))
    magnitude = abs(number)
    if not math.isfinite(number) or magnitude < 1e-4 or magnitude >= 1e15:
        return f"{number:.4g}"
    if magnitude >= 1000:
        text = f"{number:,.2f}" if magnitude >= 10_000 else f"{number:.2f}"
        return text.rstrip("0").rstrip(".")
    return f"{number:.4g}"


def _format_int(number: int) -> str:
    return f"{number:,}" if abs(number) >= 10_000 else str(number)


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def humanize(column: str) -> str:
    """A column name as words: ``credit_amount`` -> ``credit amount``, ``AccidentArea`` ->
    ``accident area``, ``LIMIT_BAL`` -> ``limit bal``; short acronyms (``DJ``) stay."""
    name = str(column)
    if name.upper() == name:  # SHOUTING_CASE has no acronyms to keep
        return " ".join(name.replace("_", " ").lower().split())
    words = _CAMEL.sub(" ", name.replace("_", " ")).split()
    return " ".join(w if w.isupper() and len(w) <= 3 else w.lower() for w in words)


# A plain decimal as CSV text ("20000", "-0.5"); "0012" keeps its zeros, it is a code.
_PLAIN_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")


def serialize_row(row: Mapping[str, Any], columns: list[str],
                  names: Mapping[str, str] | None = None,
                  categories: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """A tabular row as text: ``"credit amount: 1,169; purpose: radio/television"``.

    ``names`` gives readable column names (default: :func:`humanize`); ``categories``
    decodes codes per column (``{"SEX": {"1": "male"}}``); a code not listed prints as is.
    Numbers read from CSV as text are formatted like numbers.
    """
    names, categories = names or {}, categories or {}
    parts = []
    for col in columns:
        value = row[col]
        if isinstance(value, str) and _PLAIN_NUMBER.fullmatch(value.strip()):
            value = float(value)
        codes = categories.get(col)
        code = format_value(value).replace(",", "") if isinstance(value, (int, float, np.number)) else None
        text = format_value(value)
        if codes is not None:
            text = codes.get(code if code is not None else text, text)
        parts.append(f"{names.get(col) or humanize(col)}: {text}")
    return "; ".join(parts)


# ---------------------------------------------------------------- duplicates and conflicts


def drop_duplicates_and_conflicts(
    frame: pd.DataFrame, cfg: CleanConfig
) -> tuple[pd.DataFrame, int, dict[str, Any]]:
    """Drop exact (text, label) duplicates and texts that carry more than one label.

    ``frame`` has ``text`` and ``label`` columns. Exact duplicates keep their first row.
    A conflict is a text seen with different labels; with ``drop_conflicts`` every row of
    it goes, because no row can be trusted over the others. Conflicts are reported either way.

    Returns:
        The kept rows, the number of duplicate rows removed, and
        ``{"count": texts, "rows": rows, "dropped": bool, "examples": [up to 5 texts]}``.
    """
    key = _key(frame)
    duplicates = 0
    if cfg.drop_duplicates:
        dup = frame.duplicated(subset=[key, "label"], keep="first")
        duplicates = int(dup.sum())
        frame = frame.loc[~dup]
    labels_per_text = frame.groupby(key, sort=False)["label"].nunique()
    conflicted = labels_per_text[labels_per_text > 1].index
    in_conflict = frame[key].isin(conflicted)
    conflicts = {
        "count": len(conflicted),
        "rows": int(in_conflict.sum()),
        "dropped": bool(cfg.drop_conflicts and len(conflicted)),
        "examples": [_shorten(t.replace("\x1f", " | ")) for t in list(conflicted[:MAX_CONFLICT_EXAMPLES])],
    }
    if cfg.drop_conflicts:
        frame = frame.loc[~in_conflict]
    return frame, duplicates, conflicts


def merge_conflicts(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Add up the conflict reports of several files."""
    examples = [e for part in parts for e in part["examples"]][:MAX_CONFLICT_EXAMPLES]
    return {
        "count": sum(p["count"] for p in parts),
        "rows": sum(p["rows"] for p in parts),
        "dropped": any(p["dropped"] for p in parts),
        "examples": examples,
    }


def _key(frame: pd.DataFrame) -> str:
    # "key" (text plus features, for fusion) when present, else the text alone.
    return "key" if "key" in frame.columns else "text"


def _shorten(text: str) -> str:
    return text if len(text) <= _EXAMPLE_CHARS else text[: _EXAMPLE_CHARS - 1] + "…"


# ---------------------------------------------------------------- overlap between splits


def remove_overlap(
    train: pd.DataFrame, validation: pd.DataFrame, test: pd.DataFrame | None
) -> tuple[pd.DataFrame, pd.DataFrame | None, dict[str, int]]:
    """Remove from validation the texts also in train, and from test those in train or validation.

    A text scored in evaluation that the model trained on inflates the score, so the
    evaluation splits give up those rows; train is never touched.
    """
    key = _key(train)
    seen = set(train[key])
    in_train = validation[key].isin(seen)
    validation = validation.loc[~in_train]
    removed = {"validation": int(in_train.sum()), "test": 0}
    if test is not None:
        seen.update(validation[key])
        in_seen = test[key].isin(seen)
        test = test.loc[~in_seen]
        removed["test"] = int(in_seen.sum())
    return validation, test, removed
