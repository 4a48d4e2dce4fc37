"""Decision thresholds checked against hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest

from fintune.evaluation import choose_threshold, classification_metrics
from fintune.scoring.threshold import NEVER

Y = np.array([1, 1, 0, 1, 0, 0])
P = np.array([0.9, 0.8, 0.7, 0.6, 0.3, 0.1])


def test_max_f1() -> None:
    # t=0.9: F1 0.5; 0.8: 0.8; 0.7: 0.667; 0.6: 0.857 (TP 3, FP 1); lower: worse.
    assert choose_threshold(Y, P, "max_f1") == pytest.approx(0.6)


def test_target_recall_takes_the_highest_threshold_that_reaches_it() -> None:
    assert choose_threshold(Y, P, "recall", target_recall=0.6) == pytest.approx(0.8)  # 2 of 3
    assert choose_threshold(Y, P, "recall", target_recall=1.0) == pytest.approx(0.6)


def test_cost_weighs_missed_positives_against_false_alarms() -> None:
    # A missed positive costs 10, a false alarm 1: catch all three (t=0.6, one false alarm).
    assert choose_threshold(Y, P, "cost", cost_false_negative=10, cost_false_positive=1) == pytest.approx(0.6)
    # False alarms cost 10, misses 1: stop at 0.8 (one miss, no false alarm: cost 1).
    assert choose_threshold(Y, P, "cost", cost_false_negative=1, cost_false_positive=10) == pytest.approx(0.8)
    # When the top score is a false alarm, flagging nothing (cost 2) beats any cut-off (>= 10).
    y, p = np.array([0, 1, 1]), np.array([0.9, 0.8, 0.7])
    assert choose_threshold(y, p, "cost", cost_false_negative=1, cost_false_positive=10) == NEVER


def test_threshold_changes_predictions_not_rankings() -> None:
    probs = np.c_[1 - P, P]
    at_half = classification_metrics(Y, probs, ["good", "bad"])
    at_06 = classification_metrics(Y, probs, ["good", "bad"], threshold=0.6)
    assert at_half["confusion_matrix"]["matrix"] == [[2, 1], [0, 3]]  # 0.7 and 0.6 count as bad
    assert at_06["confusion_matrix"]["matrix"] == [[2, 1], [0, 3]]
    at_08 = classification_metrics(Y, probs, ["good", "bad"], threshold=0.8)
    assert at_08["confusion_matrix"]["matrix"] == [[3, 0], [1, 2]]
    assert at_08["roc_auc"] == at_half["roc_auc"]
