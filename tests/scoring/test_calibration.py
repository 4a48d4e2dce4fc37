"""ECE and temperature scaling."""

from __future__ import annotations

import numpy as np
import pytest

from fintune.scoring.calibration import apply_temperature, expected_calibration_error, fit_temperature


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
