"""ECE and temperature scaling."""

from __future__ import annotations

import numpy as np
import pytest

from fintune.scoring.calibration import (
    ECE_MARGIN, apply_temperature, choose_temperature, expected_calibration_error, fit_temperature,
)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _sampled(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.5, (n, 3))
    true = _softmax(logits)
    labels = np.array([rng.choice(3, p=p) for p in true])
    return logits, labels


def test_ece_is_small_for_true_probabilities_and_large_for_over_confident_ones():
    logits, labels = _sampled()
    assert expected_calibration_error(labels, _softmax(logits)) < 0.03
    assert expected_calibration_error(labels, _softmax(3 * logits)) > 0.1


def test_ece_by_hand():
    # Two rows at confidence 0.9, one right one wrong: |0.5 - 0.9| = 0.4.
    probs = np.array([[0.9, 0.1], [0.9, 0.1]])
    assert expected_calibration_error(np.array([0, 1]), probs) == pytest.approx(0.4)


def test_temperature_recovers_the_over_confidence_and_keeps_the_argmax():
    logits, labels = _sampled()
    over = _softmax(3 * logits)
    t = fit_temperature(labels, over)
    assert t == pytest.approx(3.0, rel=0.1)
    fixed = apply_temperature(over, t)
    assert (fixed.argmax(axis=1) == over.argmax(axis=1)).all()
    assert expected_calibration_error(labels, fixed) < 0.03


def test_the_temperature_is_kept_only_where_it_helps_out_of_fold():
    logits, labels = _sampled(600)
    over = choose_temperature(labels, _softmax(3 * logits))
    assert over.applied and over.temperature == pytest.approx(over.fitted) and over.fitted > 2
    assert over.ece_after_out_of_fold < over.validation_ece - ECE_MARGIN
    # Probabilities already calibrated: a fitted T near 1 gains nothing out of fold, and is not applied.
    right = choose_temperature(labels, _softmax(logits))
    assert not right.applied and right.temperature == 1.0 and "does not fall" in right.reason


def test_a_degenerate_fit_at_its_bound_is_refused_and_flagged():
    # Separable data answered with confidence 0.6: NLL falls all the way to T -> 0, the lower bound.
    labels = np.array([0, 1] * 40)
    probs = np.where(labels[:, None] == np.arange(2), 0.6, 0.4)
    choice = choose_temperature(labels, probs)
    assert choice.at_bound and not choice.applied and choice.temperature == 1.0 and "bound" in choice.reason
    # Too few validation rows to judge: not applied either, and said.
    small = choose_temperature(labels[:20], probs[:20])
    assert not small.applied and "too few" in small.reason


def test_a_run_records_the_choice_and_the_summary_warns_at_a_bound():
    from fintune.evaluation.checks import warnings_for

    metrics = {"validation": {"n": 500}, "calibration": {"at_bound": True, "reason": "not applied: the fit reached"}}
    assert any("temperature scaling not applied" in line for line in warnings_for(metrics, ["validation"]))


def test_a_temperature_per_label_is_kept_only_where_that_label_is_miscalibrated() -> None:
    from fintune.scoring.calibration import apply_label_temperatures, choose_label_temperatures, label_ece

    rng = np.random.default_rng(0)
    n = 2000
    true_logits = rng.normal(0, 2, size=(n, 2))
    truth = (rng.random((n, 2)) < 1 / (1 + np.exp(-true_logits))).astype(int)
    # Label 0 is over-confident (logits tripled); label 1 is calibrated as it is.
    probs = 1 / (1 + np.exp(-true_logits * np.array([3.0, 1.0])))
    first, second = choose_label_temperatures(truth, probs)
    assert first.applied and 2.5 < first.temperature < 3.5
    assert not second.applied and second.temperature == 1.0
    fixed = apply_label_temperatures(probs, [first.temperature, second.temperature])
    assert label_ece(truth, fixed) < label_ece(truth, probs)
    np.testing.assert_allclose(fixed[:, 1], probs[:, 1], atol=1e-6)
    # One label's temperature is the sigmoid of its logit divided by T.
    expected = 1 / (1 + np.exp(-true_logits[:, 0] * 3.0 / first.temperature))
    np.testing.assert_allclose(fixed[:, 0], expected, atol=1e-5)
