"""Tabular features for the fusion, MLP and gradient-boosting models.

:class:`FeatureEncoder` turns the raw feature columns of a table into a float matrix:
numeric columns are standardized (mean and standard deviation of the training rows, a
missing value becomes the training mean plus a missing-flag column), categorical columns
are one-hot encoded over the categories seen in training (an unseen category is all
zeros). It is fitted on the training split only, so nothing about validation or test
leaks into the model, and it is saved beside the model as JSON.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from fintune.tasks import task_of
from fintune.data.clean import format_value, is_missing
from fintune.errors import DataError

FEATURES_FILE = "features.json"
MAX_CATEGORIES = 50  # per column; rarer ones share an "other" slot, so IDs cannot blow up the input
# A column that looks numeric but holds some text is a data error, not a categorical column.
NUMERIC_SHARE = 0.9
LEAK_SCORE = 0.99  # one feature alone separating the training labels this well is a leak


def to_numbers(values: pd.Series) -> pd.Series:
    """Numbers as floats, NaN where the cell is missing or not a number."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype("float64")
    cleaned = values.map(lambda v: v.strip().replace(",", "") if isinstance(v, str) else v)
    return pd.to_numeric(cleaned, errors="coerce").astype("float64")


def _not_numbers(values: pd.Series) -> pd.Series:
    """True where a present cell does not read as a number."""
    present = ~values.map(is_missing) & ~values.map(lambda v: isinstance(v, str) and not v.strip())
    return present & to_numbers(values).isna()


def column_kinds(frame: pd.DataFrame, columns: list[str], categorical: list[str],
                 source: str) -> tuple[list[str], list[str]]:
    """Split feature columns into (numeric, categorical).

    A column is categorical when listed in ``categorical`` or when it is text; a column
    of numbers with a few text cells (at least 90% numbers) is a mistake in the data, and
    the error names the column and the first bad row.
    """
    numeric, cats = [], []
    for col in columns:
        if col in categorical:
            cats.append(col)
            continue
        values = frame[col]
        bad = _not_numbers(values)
        present = int((~values.map(is_missing)).sum())
        if not bad.any():
            numeric.append(col)
        elif present and 1 - bad.sum() / present >= NUMERIC_SHARE:
            _raise_not_number(values, bad, col, source)
        else:
            cats.append(col)
    return numeric, cats


def numbers_or_error(values: pd.Series, column: str, source: str) -> pd.Series:
    """The column as floats (NaN where missing); a text cell is a DataError naming its row."""
    bad = _not_numbers(values)
    if bad.any():
        _raise_not_number(values, bad, column, source)
    return to_numbers(values)


def _raise_not_number(values: pd.Series, bad: pd.Series, column: str, source: str) -> None:
    first = bad.to_numpy().nonzero()[0][0]
    raise DataError(f"feature column '{column}' holds numbers, but this row holds "
                    f"{values.iloc[first]!r}; fix the value, or list '{column}' in "
                    "data.categorical_columns if it is a category",
                    file=source, row=int(values.index[first]), column=column)


@dataclass
class FeatureEncoder:
    """Standardize numeric columns and one-hot encode categorical ones, fitted on training rows."""

    numeric: list[str]
    categorical: list[str]
    means: list[float] = field(default_factory=list)
    stds: list[float] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)  # numeric columns with a missing-flag slot
    categories: dict[str, list[str]] = field(default_factory=dict)
    bins: dict[str, list[float]] = field(default_factory=dict)  # piecewise-linear bin edges per column

    @classmethod
    def fit(cls, frame: pd.DataFrame, columns: list[str], categorical: list[str], source: str,
            numeric_bins: int = 0) -> FeatureEncoder:
        """Learn column kinds, means, spreads, bin edges and categories from the training rows.

        With ``numeric_bins`` > 0 each numeric column also gets a piecewise-linear encoding
        over its training quantiles (Gorishniy et al. 2022, "On Embeddings for Numerical
        Features"): a neural head then bends a feature's effect the way trees split it.
        """
        numeric, cats = column_kinds(frame, columns, categorical, source)
        enc = cls(numeric, cats)
        for col in numeric:
            values = to_numbers(frame[col])
            mean = float(values.mean()) if values.notna().any() else 0.0
            std = float(values.std(ddof=0)) if values.notna().sum() > 1 else 0.0
            enc.means.append(mean)
            enc.stds.append(std if std > 1e-12 and math.isfinite(std) else 1.0)
            if values.isna().any():
                enc.flagged.append(col)
            if numeric_bins and values.notna().any():
                edges = np.unique(np.quantile(values.dropna(), np.linspace(0, 1, numeric_bins + 1)))
                if len(edges) > 2:  # a binary or constant column gains nothing from bins
                    enc.bins[col] = edges.tolist()
        for col in cats:
            counts = frame[col].map(_category).value_counts()
            enc.categories[col] = sorted(counts.index[:MAX_CATEGORIES].tolist())
        return enc

    @property
    def names(self) -> list[str]:
        """One name per output column: ``AGE``, ``AGE=missing``, ``SEX=2``, ..."""
        out = list(self.numeric) + [f"{c}=missing" for c in self.flagged]
        for col, edges in self.bins.items():
            out += [f"{col}~bin{i + 1}" for i in range(len(edges) - 1)]
        for col in self.categorical:
            out += [f"{col}={v}" for v in self.categories[col]] + [f"{col}=other"]
        return out

    @property
    def columns(self) -> list[str]:
        return self.numeric + self.categorical

    def transform(self, frame: pd.DataFrame, source: str) -> np.ndarray:
        """The (rows, features) float32 matrix; a text cell in a numeric column is a DataError."""
        parts: list[np.ndarray] = []
        for col, mean, std in zip(self.numeric, self.means, self.stds):
            numbers = numbers_or_error(frame[col], col, source).to_numpy()
            parts.append(((np.where(np.isnan(numbers), mean, numbers) - mean) / std)[:, None])
        for col in self.flagged:
            parts.append(to_numbers(frame[col]).isna().to_numpy(dtype=np.float64)[:, None])
        for col, edges in self.bins.items():
            parts.append(_piecewise_linear(to_numbers(frame[col]).to_numpy(), np.asarray(edges)))
        for col in self.categorical:
            known = self.categories[col]
            index = {v: i for i, v in enumerate(known)}
            slots = frame[col].map(_category).map(lambda v: index.get(v, len(known))).to_numpy()
            onehot = np.zeros((len(frame), len(known) + 1))
            onehot[np.arange(len(frame)), slots] = 1.0
            parts.append(onehot)
        if not parts:
            return np.zeros((len(frame), 0), dtype=np.float32)
        return np.concatenate(parts, axis=1).astype(np.float32)

    @property
    def width(self) -> int:
        return len(self.names)

    def save(self, folder: str | Path) -> None:
        Path(folder, FEATURES_FILE).write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path) -> FeatureEncoder:
        return cls(**json.loads(Path(folder, FEATURES_FILE).read_text(encoding="utf-8")))


def _piecewise_linear(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin i is 0 below its range, 1 above it, and the position inside it; NaN is all zeros."""
    low, width = edges[:-1], np.diff(edges)
    out = np.clip((x[:, None] - low[None, :]) / width[None, :], 0.0, 1.0)
    return np.nan_to_num(out, nan=0.0)


def _category(value: Any) -> str:
    # 1, 1.0 and "1" are the same category, as the text template prints them.
    return format_value(value).replace(",", "") if not isinstance(value, str) else value.strip() or "missing"


def check_leakage(frame: pd.DataFrame, enc: FeatureEncoder, labels: np.ndarray, task: str,
                  source: str) -> dict[str, float | None]:
    """Reject a feature that alone predicts the training target almost perfectly.

    Real credit, fraud and market features never do; a copy of the label, an outcome
    recorded after the decision, or a value from the future does. The score is the ROC-AUC
    of the column (binary), the best category purity above the majority rate (classification), or the absolute
    Spearman correlation (regression). Returns each column's score (None: not measured).
    """
    scores: dict[str, float | None] = {}
    for col in enc.columns:
        score = scores[col] = _association(frame[col], col in enc.numeric, labels, task)
        if score is not None and score >= LEAK_SCORE:
            raise DataError(
                f"feature column '{col}' alone predicts the target of the training rows almost "
                f"perfectly (score {score:.3f}); it likely holds the label or information from "
                "after the prediction time (the future). Remove it from data.feature_columns, or set "
                "data.leak_check: false if it is truly known in advance", file=source, column=col)
    return scores


def _association(values: pd.Series, numeric: bool, labels: np.ndarray, task: str) -> float | None:
    if numeric:
        x = to_numbers(values).to_numpy()
        ok = ~np.isnan(x)
        if ok.sum() < 10 or np.ptp(x[ok]) == 0:
            return None
        if task_of(task).answer == "value":
            return abs(float(pd.Series(x[ok]).corr(pd.Series(labels[ok]), method="spearman")))
        if len(np.unique(labels[ok])) == 2:
            auc = roc_auc_score(labels[ok], x[ok])
            return max(auc, 1 - auc)
        return None
    if task_of(task).answer == "value":
        return None
    cats = values.map(_category)
    # Many categories with few rows each are IDs: pure by chance, not a leak.
    if cats.nunique() > len(cats) / 10 or cats.nunique() < 2:
        return None
    table = pd.crosstab(cats.to_numpy(), labels)
    purity = table.max(axis=1).sum() / table.to_numpy().sum()
    # Measured above the majority rate: with 6% fraud, any column is 94% "pure".
    base = table.sum(axis=0).max() / table.to_numpy().sum()
    return float((purity - base) / (1 - base)) if base < 1 else None
