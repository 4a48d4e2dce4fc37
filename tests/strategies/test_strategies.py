"""One table for every strategy: what trains, that it learns, that it reloads exactly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from fintune.config import ModelConfig
from fintune.models.backbones import load_model, load_tokenizer
from fintune.models.fintune_model import FintuneModel
from fintune.strategies import STRATEGIES, build_strategy, count_parameters, strategy_config
from tests.conftest import sentiment_frame


def _head(name: str) -> bool:
    return name.startswith("classifier.") or ".pooler." in name


CASES: list[tuple[str, dict, Callable[[str], bool]]] = [
    ("full", {"name": "full"}, lambda name: True),
    ("freeze-head", {"name": "freeze"}, _head),
    ("freeze-top1", {"name": "freeze", "trainable_layers": 1},
     lambda name: _head(name) or ".encoder.layer.1." in name),
    ("freeze-all-layers", {"name": "freeze", "trainable_layers": 5},
     lambda name: _head(name) or ".encoder.layer." in name),
]
LABELS = ["negative", "neutral", "positive"]


def test_every_registered_strategy_has_a_case() -> None:
    assert {raw["name"] for _, raw, _ in CASES} == set(STRATEGIES)


def _prepared(tiny_bert: Path, raw: dict):
    torch.manual_seed(0)
    model_cfg = ModelConfig(backbone=str(tiny_bert), max_length=32)
    model = load_model(model_cfg, "classification", LABELS)
    strategy = build_strategy(strategy_config(raw))
    return strategy.prepare(model), strategy, load_tokenizer(model_cfg)


@pytest.mark.parametrize(("case", "raw", "trains"), CASES, ids=[c[0] for c in CASES])
def test_trainable_parameters_match_strategy(tiny_bert: Path, case: str, raw: dict, trains) -> None:
    model, _, _ = _prepared(tiny_bert, raw)
    for name, param in model.named_parameters():
        assert param.requires_grad == trains(name), name
    trainable, total = count_parameters(model)
    assert trainable == sum(p.numel() for n, p in model.named_parameters() if trains(n))
    assert total == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("case", "raw", "trains"), CASES, ids=[c[0] for c in CASES])
def test_loss_decreases(tiny_bert: Path, case: str, raw: dict, trains) -> None:
    model, strategy, tokenizer = _prepared(tiny_bert, raw)
    frame = sentiment_frame(32)
    batch = tokenizer(list(frame.text), padding=True, return_tensors="pt")
    labels = torch.tensor([LABELS.index(v) for v in frame.label])
    optimizer = torch.optim.AdamW(strategy.param_groups(model, 1e-2, 0.0))

    def eval_loss() -> float:
        model.eval()
        with torch.no_grad():
            return torch.nn.functional.cross_entropy(model(**batch).logits, labels).item()

    before = eval_loss()
    for _ in range(25):
        model.train()
        torch.nn.functional.cross_entropy(model(**batch).logits, labels).backward()
        optimizer.step()
        optimizer.zero_grad()
    assert eval_loss() < before * 0.97  # head-only on a random body learns slowest


@pytest.mark.parametrize(("case", "raw", "trains"), CASES, ids=[c[0] for c in CASES])
def test_save_reload_gives_identical_logits(tiny_bert: Path, tmp_path: Path, case: str, raw: dict,
                                            trains) -> None:
    model, _, tokenizer = _prepared(tiny_bert, raw)
    meta = {"task": "classification", "label_names": LABELS, "max_length": 32,
            "data": {"train": "x.csv", "text_column": "text"}}
    FintuneModel(model.eval(), tokenizer, meta).save(tmp_path / "model")
    reloaded = FintuneModel.load(tmp_path / "model")
    texts = list(sentiment_frame(10).text)
    assert reloaded.outputs(texts) == pytest.approx(FintuneModel(model, tokenizer, meta).outputs(texts), abs=1e-6)
    assert reloaded.label_names == LABELS
