"""Groups of rows (a category, or bins of a number) and per-group decision thresholds.

Fitting the thresholds is fairness work (:mod:`fintune.evaluation.fairness`); applying them
is part of every prediction, so they live here, below the models.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fintune.data.features import to_numbers
from fintune.errors import FintuneError

DEFAULT_QUANTILES = 4


@dataclass
class GroupSpec:
    """One grouping column; numbers are cut into bins (given edges, or training quartiles)."""

    column: str
    edges: list[float] | None = None

    @classmethod
    def parse(cls, text: str) -> GroupSpec:
        """``age_in_years`` or ``age_in_years:25,35,50`` (bin edges)."""
        column, _, edges = text.partition(":")
        if not column.strip():
            raise FintuneError(f"group '{text}': write COLUMN or COLUMN:EDGE,EDGE,... e.g. age:25,35,50")
        try:
            parsed = sorted(float(e) for e in edges.split(",")) if edges.strip() else None
        except ValueError:
            raise FintuneError(f"group '{text}': bin edges must be numbers, e.g. age:25,35,50") from None
        return cls(column.strip(), parsed)

    def resolve(self, values: pd.Series) -> GroupSpec:
        """Fix quartile edges from these values when the column is numeric and no edges were given."""
        numbers = to_numbers(values)
        if self.edges is not None or numbers.isna().any() or numbers.nunique() <= 10:
            return self
        edges = np.unique(np.quantile(numbers, np.linspace(0, 1, DEFAULT_QUANTILES + 1))[1:-1])
        return GroupSpec(self.column, [float(e) for e in edges])

    def labels(self, values: pd.Series) -> pd.Series:
        """The group of each row as text: a category, or a bin such as ``25-35``."""
        if self.edges is None:
            return values.map(lambda v: "missing" if pd.isna(v) else str(v).strip()).reset_index(drop=True)
        numbers = to_numbers(values).to_numpy()
        if np.isnan(numbers).any():
            raise FintuneError(f"group column '{self.column}' has bin edges but holds values that are not numbers")
        edges = self.edges
        names = [f"<{_num(edges[0])}"] + [f"{_num(a)}-{_num(b)}" for a, b in zip(edges[:-1], edges[1:])] \
            + [f">={_num(edges[-1])}"]
        return pd.Series([names[i] for i in np.searchsorted(edges, numbers, side="right")])


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


@dataclass
class GroupThresholds:
    """Per-group thresholds on P(positive), saved in ``fintune.json``; unknown groups use ``default``."""

    column: str
    edges: list[float] | None
    rule: str
    default: float
    thresholds: dict[str, float] = field(default_factory=dict)

    def decide(self, scores: np.ndarray, values: pd.Series) -> np.ndarray:
        """1 where the row's score reaches its group's threshold."""
        groups = GroupSpec(self.column, self.edges).labels(values)
        cut = np.array([self.thresholds.get(g, self.default) for g in groups])
        return (np.asarray(scores) >= cut).astype(int)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FairThresholds:
    """fairlearn's ``ThresholdOptimizer`` as plain numbers, saved in ``fintune.json`` (no pickle).

    Per group: with probability ``p0`` the rule ``score operator0 threshold0`` decides, else
    ``score operator1 threshold1`` (and, where fairlearn fitted it, with probability
    ``p_ignore`` a constant). That mixture is the probability of a positive decision; the
    decision draws against it with ``numpy.random.RandomState(seed)``, as fairlearn's
    ``predict(..., random_state=seed)`` does, so the saved form gives fairlearn's
    predictions. Groups unseen in fitting use ``default`` as a plain threshold.
    """

    column: str
    edges: list[float] | None
    constraints: str
    default: float
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    seed: int = 0
    method: str = "threshold_optimizer"

    @property
    def thresholds(self) -> dict[str, dict[str, Any]]:
        """The fitted rule of each group (the name the plain per-group thresholds use)."""
        return self.groups

    def positive_probability(self, scores: np.ndarray, values: pd.Series) -> np.ndarray:
        """P(positive decision) of each row under its group's randomized rule."""
        groups = GroupSpec(self.column, self.edges).labels(values).to_numpy()
        s = np.asarray(scores, dtype=float)
        out = (s >= self.default).astype(float)
        for name, rule in self.groups.items():
            mine = groups == name
            mixed = rule["p0"] * _apply(rule["operator0"], rule["threshold0"], s[mine]) + \
                rule["p1"] * _apply(rule["operator1"], rule["threshold1"], s[mine])
            if rule.get("p_ignore") is not None:
                mixed = rule["p_ignore"] * rule["prediction_constant"] + (1 - rule["p_ignore"]) * mixed
            out[mine] = mixed
        return out

    def decide(self, scores: np.ndarray, values: pd.Series) -> np.ndarray:
        """1 where the row's draw falls under its positive probability."""
        positive = self.positive_probability(scores, values)
        return (positive >= np.random.RandomState(self.seed).rand(len(positive))).astype(int)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _apply(operator: str, threshold: float, scores: np.ndarray) -> np.ndarray:
    return (scores > threshold if operator == ">" else scores < threshold).astype(float)


def group_decision(saved: dict[str, Any]) -> GroupThresholds | FairThresholds:
    """The per-group decision saved in ``fintune.json``: fairlearn's ThresholdOptimizer, or the
    plain per-group thresholds of models saved before it."""
    if saved.get("method") == "threshold_optimizer":
        return FairThresholds(**saved)
    return GroupThresholds(**saved)
