"""The FinBERT recipe: top-down unfreezing, depth-decayed learning rates, slanted triangular schedule."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fintune.config import model_config
from fintune.models.backbones import load_model
from fintune.strategies import build_strategy, strategy_config


@pytest.fixture()
def gradual(tiny_bert: Path):
    model = load_model(model_config(backbone=str(tiny_bert)), "classification", ["a", "b"])
    strategy = build_strategy(strategy_config({"name": "gradual", "lr_decay": 0.5, "unfreeze_fraction": 0.5}))
    return strategy.prepare(model), strategy


def _trainable(model) -> set[str]:
    groups = set()
    for name, param in model.named_parameters():
        if param.requires_grad:
            groups.add("head" if name.startswith("classifier") or ".pooler." in name
                       else name.split(".")[3] if ".encoder.layer." in name else "embeddings")
    return groups


def test_unfreezes_from_the_top_down(gradual) -> None:
    model, strategy = gradual
    seen = []
    for step in range(100):  # 4 groups thaw over the first 50 steps: head, layer 1, layer 0, embeddings
        strategy.on_step(model, step, 100)
        seen.append(frozenset(_trainable(model)))
    assert seen[0] == {"head"}
    assert seen[20] == {"head", "1"}
    assert seen[40] == {"head", "1", "0"}
    assert seen[99] == {"head", "1", "0", "embeddings"}


def test_learning_rates_shrink_with_depth(gradual) -> None:
    model, strategy = gradual
    groups = strategy.param_groups(model, 1e-3, 0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    lr_of = {names[id(p)]: g["lr"] for g in groups for p in g["params"]}
    assert len(lr_of) == len(names)  # every parameter is in the optimizer from the start
    assert lr_of["classifier.weight"] == pytest.approx(1e-3)
    assert lr_of["bert.encoder.layer.1.output.dense.weight"] == pytest.approx(5e-4)
    assert lr_of["bert.encoder.layer.0.output.dense.weight"] == pytest.approx(2.5e-4)
    assert lr_of["bert.embeddings.word_embeddings.weight"] == pytest.approx(1.25e-4)


def test_slanted_triangular_schedule(gradual) -> None:
    model, strategy = gradual
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = strategy.schedule(optimizer, total_steps=100, warmup_steps=0)
    lrs = []
    for _ in range(100):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    peak = max(range(100), key=lrs.__getitem__)
    assert peak == 10  # cut_frac 0.1: a short rise ...
    assert lrs[0] == pytest.approx(1 / 32) and lrs[peak] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1:]))  # ... then a long decay
