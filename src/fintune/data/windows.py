"""Time series as rows: windows of lagged values, rolling means and volatility.

A price table (one row per date: returns, volume, volatility, ...) becomes one row per
date t whose features are the series at t - horizon and earlier, and whose target is the
label column at t. The window is built from past rows only, so no feature can hold the
value it predicts; a column that itself holds future values is caught by the leak check
(:func:`fintune.data.features.check_leakage`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fintune.config import DataConfig, WindowConfig
from fintune.data.features import numbers_or_error
from fintune.data.split import parse_dates
from fintune.errors import DataError

UP, DOWN = "Up", "Down"


def window_columns(series: list[str], cfg: WindowConfig) -> list[str]:
    """Names of the columns a window holds, in the order the text template lists them."""
    lags = [f"{s}_lag{k}" for s in series for k in range(cfg.horizon, cfg.horizon + cfg.lags)]
    rolling = [f"{s}_{stat}{n}" for s in series for n in cfg.rolling for stat in ("mean", "std")]
    return lags + rolling + list(cfg.keep_columns)


def rows_needed(cfg: WindowConfig) -> int:
    """Rows of history before the first complete window."""
    return cfg.horizon + max(cfg.lags, *cfg.rolling) - 1 if cfg.rolling else cfg.horizon + cfg.lags - 1


def build_windows(table: pd.DataFrame, data: DataConfig, source: str) -> pd.DataFrame:
    """One row per date with a complete window: date, label, window columns.

    The index holds each row's position in the file (from 1), so later errors name the
    file's row. Rows are sorted by date; two rows with the same date are an error, since a
    window needs one row per step (one instrument per file).

    Raises:
        DataError: a series holds text, a date does not parse or repeats, or the table is
            shorter than one window.
    """
    cfg = data.windows
    assert cfg is not None and data.date_column is not None and data.feature_columns is not None
    dates = parse_dates(table[data.date_column], source, data.date_column)
    order = np.argsort(dates.to_numpy(), kind="stable")
    table = table.iloc[order].copy()
    table.index = order + 1
    dates = dates.iloc[order].reset_index(drop=True)
    repeated = dates.duplicated()
    if repeated.any():
        pos = int(np.flatnonzero(repeated.to_numpy())[0])
        raise DataError(f"date {dates.iloc[pos]} appears twice; data.windows needs one row per date "
                        "(one instrument per file)", file=source, row=int(table.index[pos]),
                        column=data.date_column)
    needed = rows_needed(cfg) + 1
    if len(table) < needed:
        raise DataError(f"has {len(table)} rows, fewer than the {needed} one window needs "
                        f"(horizon {cfg.horizon}, {cfg.lags} lags, rolling {cfg.rolling}); add rows "
                        "or shorten data.windows", file=source)

    out = pd.DataFrame(index=table.index)
    out[data.date_column] = table[data.date_column].to_numpy()
    for col in data.feature_columns:
        series = numbers_or_error(table[col], col, source)
        for k in range(cfg.horizon, cfg.horizon + cfg.lags):
            out[f"{col}_lag{k}"] = series.shift(k)
        past = series.shift(cfg.horizon)
        for n in cfg.rolling:
            out[f"{col}_mean{n}"] = past.rolling(n).mean()
            out[f"{col}_std{n}"] = past.rolling(n).std(ddof=0)
    for col in cfg.keep_columns:
        out[col] = table[col]
    target = table[data.label_column]
    if cfg.target == "direction":
        value = numbers_or_error(target, data.label_column, source)
        target = pd.Series(np.where(value > 0, UP, DOWN), index=table.index).where(value.notna())
    out[data.label_column] = target
    return out.iloc[rows_needed(cfg):]
