"""Periods of time that sentiment is averaged over: day, week, month, quarter, year."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import pandas as pd

from fintune.errors import FintuneError

PERIODS: tuple[str, ...] = ("day", "week", "month", "quarter", "year")


def check_period(period: str, option: str = "period") -> None:
    """Raise a FintuneError naming ``option`` unless ``period`` is one of :data:`PERIODS`."""
    if period not in PERIODS:
        raise FintuneError(f"unknown {option} '{period}'; use one of: {', '.join(PERIODS)}")


def period_of(when: pd.Timestamp | datetime | date, period: str) -> str:
    """The label of the period a date falls in: ``2024-03-15`` (day), ``2024-W11`` (ISO
    week), ``2024-03`` (month), ``2024-Q1`` (quarter), ``2024`` (year). Labels of one kind
    sort in time order."""
    check_period(period)
    return _LABELS[period](pd.Timestamp(when))


# Zero-padded so that labels sort as text in time order; weeks are ISO weeks, whose year
# can differ from the calendar year near New Year (2024-12-30 is in 2025-W01).
_LABELS: dict[str, Callable[[pd.Timestamp], str]] = {
    "day": lambda ts: f"{ts.year:04d}-{ts.month:02d}-{ts.day:02d}",
    "week": lambda ts: f"{ts.isocalendar()[0]:04d}-W{ts.isocalendar()[1]:02d}",
    "month": lambda ts: f"{ts.year:04d}-{ts.month:02d}",
    "quarter": lambda ts: f"{ts.year:04d}-Q{ts.quarter}",
    "year": lambda ts: f"{ts.year:04d}",
}


def timestamp(value: Any) -> pd.Timestamp | None:
    """``value`` as a Timestamp; None for None, NaN and NaT (a text without a date)."""
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):  # pd.isna of an array-like; not a date anyway
        pass
    return pd.Timestamp(value)
