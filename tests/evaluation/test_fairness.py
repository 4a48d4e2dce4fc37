"""Fairness tables, group bins, per-group thresholds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fintune.errors import FintuneError
from fintune.evaluation.fairness import GroupSpec, GroupThresholds, fairness_table, fit_group_thresholds
from fintune.trust import parse_groups


def test_table_by_hand():
    y = np.array([1, 0, 1, 0, 1, 0, 0, 0])
    pred = np.array([1, 0, 1, 1, 0, 0, 0, 0])
    groups = pd.Series(["a", "a", "a", "a", "b", "b", "b", "b"])
    table = fairness_table(y, pred, groups)
    a, b = table["groups"]["a"], table["groups"]["b"]
    assert (a["selection_rate"], a["tpr"], a["fpr"], a["accuracy"]) == (0.75, 1.0, 0.5, 0.75)
    assert (b["selection_rate"], b["tpr"], b["fpr"], b["accuracy"]) == (0.0, 0.0, 0.0, 0.75)
    assert table["demographic_parity_difference"] == pytest.approx(0.75)
    assert table["equalized_odds_difference"] == pytest.approx(1.0)


def test_numeric_groups_are_binned_by_edges_or_quartiles():
    ages = pd.Series([19, 24, 25, 34, 35, 50, 70])
    assert GroupSpec.parse("age:25,35").labels(ages).tolist() == ["<25", "<25", "25-35", "25-35", ">=35", ">=35", ">=35"]
    quartiles = GroupSpec("age").resolve(pd.Series(range(20, 80)))
    assert len(quartiles.edges) == 3
    assert GroupSpec("sex").resolve(pd.Series(["m", "f"] * 10)).edges is None
    with pytest.raises(FintuneError, match="bin edges must be numbers"):
        GroupSpec.parse("age:young,old")


def test_parse_groups_keeps_bin_edges_with_their_column():
    assert parse_groups("personal_status_and_sex,age_in_years:25,35,50") == [
        "personal_status_and_sex", "age_in_years:25,35,50"]
    assert parse_groups("a, b") == ["a", "b"]


def test_demographic_parity_thresholds_even_out_selection_rates():
    rng = np.random.default_rng(0)
    groups = pd.Series(np.repeat(["x", "y"], 500))
    # Group y gets systematically lower scores at the same label mix.
    y = rng.integers(0, 2, 1000)
    scores = np.clip(0.3 * y + rng.uniform(0, 0.7, 1000) - np.where(groups == "y", 0.2, 0.0), 0, 1)
    before = fairness_table(y, (scores >= 0.5).astype(int), groups)["demographic_parity_difference"]
    fitted = fit_group_thresholds(y, scores, groups, GroupSpec("g"), "demographic_parity", 0.5)
    after = fairness_table(y, fitted.decide(scores, groups), groups)["demographic_parity_difference"]
    assert before > 0.2 and after < 0.02
    assert fitted.thresholds["y"] < fitted.thresholds["x"]
    again = GroupThresholds(**fitted.to_dict())  # what fintune.json stores
    assert (again.decide(scores, groups) == fitted.decide(scores, groups)).all()


def test_equal_opportunity_thresholds_even_out_true_positive_rates():
    rng = np.random.default_rng(1)
    groups = pd.Series(np.repeat(["x", "y"], 600))
    y = rng.integers(0, 2, 1200)
    scores = np.clip(0.35 * y + rng.uniform(0, 0.65, 1200) - np.where(groups == "y", 0.15, 0.0), 0, 1)
    fitted = fit_group_thresholds(y, scores, groups, GroupSpec("g"), "equal_opportunity", 0.5)
    tpr = fairness_table(y, fitted.decide(scores, groups), groups)["groups"]
    assert abs(tpr["x"]["tpr"] - tpr["y"]["tpr"]) < 0.03
    with pytest.raises(FintuneError, match="unknown mitigation"):
        fit_group_thresholds(y, scores, groups, GroupSpec("g"), "parity", 0.5)
