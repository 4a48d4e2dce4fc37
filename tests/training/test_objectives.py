"""The supervised loss: cross-entropy, class weights and focal loss against their definitions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fintune.training.loop import Supervised

LOGITS = torch.tensor([[2.0, 0.0], [0.5, 0.5], [-1.0, 1.0]])
LABELS = np.array([0, 1, 1])
INDEX = np.arange(3)


def test_focal_with_gamma_zero_is_cross_entropy() -> None:
    ce = Supervised(LABELS, "classification")(LOGITS, INDEX)
    focal0 = Supervised(LABELS, "classification", focal_gamma=0.0)(LOGITS, INDEX)
    assert focal0.item() == pytest.approx(ce.item(), rel=1e-6)


def test_focal_matches_its_definition_and_downweights_easy_rows() -> None:
    p_t = torch.softmax(LOGITS, -1)[torch.arange(3), torch.tensor(LABELS)]
    expected = (-(1 - p_t) ** 2 * torch.log(p_t)).mean()
    weights = torch.tensor([1.0, 3.0])
    focal = Supervised(LABELS, "classification", focal_gamma=2.0)(LOGITS, INDEX)
    assert focal.item() == pytest.approx(expected.item(), rel=1e-6)
    assert focal.item() < Supervised(LABELS, "classification")(LOGITS, INDEX).item()
    weighted = Supervised(LABELS, "classification", weights, focal_gamma=2.0)(LOGITS, INDEX)
    expected_w = (-(1 - p_t) ** 2 * torch.log(p_t) * weights[torch.tensor(LABELS)]).mean()
    assert weighted.item() == pytest.approx(expected_w.item(), rel=1e-6)
