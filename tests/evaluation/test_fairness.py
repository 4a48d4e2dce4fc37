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


def _biased(n: int, seed: int, shift: float) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    rng = np.random.default_rng(seed)
    groups = pd.Series(np.repeat(["x", "y"], n // 2))
    # Group y gets systematically lower scores at the same label mix.
    y = rng.integers(0, 2, n)
    scores = np.clip(0.3 * y + rng.uniform(0, 0.7, n) - np.where(groups == "y", shift, 0.0), 0, 1)
    return y, scores, groups


def test_demographic_parity_mitigation_evens_out_selection_rates():
    y, scores, groups = _biased(1000, 0, 0.2)
    before = fairness_table(y, (scores >= 0.5).astype(int), groups)["demographic_parity_difference"]
    fitted = fit_group_thresholds(y, scores, groups, GroupSpec("g"), "demographic_parity", 0.5)
    after = fairness_table(y, fitted.decide(scores, groups), groups)["demographic_parity_difference"]
    assert before > 0.2 and after < 0.05
    assert fitted.to_dict()["method"] == "threshold_optimizer" and set(fitted.groups) == {"x", "y"}


@pytest.mark.parametrize("rule", ["demographic_parity", "equalized_odds", "true_positive_rate_parity"])
def test_the_saved_form_reproduces_fairlearns_threshold_optimizer(rule: str):
    """fintune.json holds numbers, not a pickle: they give fairlearn's own probabilities and,
    with the same random state, its predictions."""
    import json

    from fairlearn.postprocessing import ThresholdOptimizer

    from fintune.evaluation.fairness import _Scores
    from fintune.scoring.groups import group_decision

    y, scores, groups = _biased(1200, 1, 0.15)
    fitted = fit_group_thresholds(y, scores, groups, GroupSpec("g"), rule, 0.5, seed=3)
    saved = group_decision(json.loads(json.dumps(fitted.to_dict())))  # what fintune.json stores
    theirs = ThresholdOptimizer(estimator=_Scores().fit(scores[:, None], y), constraints=rule, prefit=True,
                                predict_method="predict", objective="accuracy_score")
    theirs.fit(scores[:, None], y, sensitive_features=groups.to_numpy())
    new_y, new_scores, new_groups = _biased(500, 2, 0.15)
    pmf = theirs._pmf_predict(new_scores[:, None], sensitive_features=new_groups.to_numpy())[:, 1]
    assert np.allclose(saved.positive_probability(new_scores, new_groups), pmf, atol=1e-12)
    expected = theirs.predict(new_scores[:, None], sensitive_features=new_groups.to_numpy(), random_state=3)
    assert (saved.decide(new_scores, new_groups) == expected).all()


def test_true_positive_rates_even_out_and_unknown_rules_are_refused():
    y, scores, groups = _biased(1200, 1, 0.15)
    fitted = fit_group_thresholds(y, scores, groups, GroupSpec("g"), "equal_opportunity", 0.5)  # the old name
    assert fitted.constraints == "true_positive_rate_parity"
    tpr = fairness_table(y, fitted.decide(scores, groups), groups)["groups"]
    assert abs(tpr["x"]["tpr"] - tpr["y"]["tpr"]) < 0.05
    with pytest.raises(FintuneError, match="unknown mitigation"):
        fit_group_thresholds(y, scores, groups, GroupSpec("g"), "parity", 0.5)


def test_plain_group_thresholds_of_older_models_still_decide():
    from fintune.scoring.groups import group_decision

    old = {"column": "g", "edges": None, "rule": "demographic_parity", "default": 0.5, "thresholds": {"y": 0.3}}
    decision = group_decision(old)
    assert isinstance(decision, GroupThresholds)
    assert decision.decide(np.array([0.4, 0.4]), pd.Series(["x", "y"])).tolist() == [0, 1]
