"""One table for every strategy: what trains, that it learns, that it reloads exactly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from fintune.config import model_config
from fintune.models.backbones import load_model, load_tokenizer
from fintune.predictors import FintuneModel
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
    ("gradual", {"name": "gradual"}, lambda name: True),  # everything thaws in the end
    ("lora", {"name": "lora", "r": 4}, lambda name: "lora_" in name or ".modules_to_save." in name),
    ("lora-all-linear", {"name": "lora", "target_modules": "all-linear"},
     lambda name: "lora_" in name or ".modules_to_save." in name),
    ("prompt", {"name": "prompt", "num_virtual_tokens": 4, "init_text": "acme stock"},
     lambda name: "prompt_encoder" in name or ".modules_to_save." in name),
    ("prompt-random", {"name": "prompt", "num_virtual_tokens": 4, "init": "random"},
     lambda name: "prompt_encoder" in name or ".modules_to_save." in name),
    ("ptuning", {"name": "ptuning", "num_virtual_tokens": 4, "encoder_hidden_size": 16},
     lambda name: "prompt_encoder" in name or ".modules_to_save." in name),
]
LABELS = ["negative", "neutral", "positive"]


def test_every_registered_strategy_has_a_case() -> None:
    # qlora is for causal LMs on CUDA: tests/models/test_causal.py covers it. setfit changes a
    # probe's encoder before its head trains: tests/strategies/test_setfit.py. dpo trains a causal
    # LM on pairs of answers: tests/strategies/test_dpo.py.
    assert {raw["name"] for _, raw, _ in CASES} == set(STRATEGIES) - {"qlora", "setfit", "dpo"}


def _prepared(tiny_bert: Path, raw: dict):
    torch.manual_seed(0)
    model_cfg = model_config(backbone=str(tiny_bert), max_length=32)
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
    for step in range(25):
        strategy.on_step(model, step, 25)
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
            "data": {"train": "x.csv", "text_column": "text"}, "base_model": str(tiny_bert)}
    with torch.no_grad():  # move every trainable weight off its initial value first
        for param in model.parameters():
            if param.requires_grad:
                param.add_(torch.randn_like(param) * 0.05)
    FintuneModel(model.eval(), tokenizer, meta).save(tmp_path / "model")
    reloaded = FintuneModel.load(tmp_path / "model")
    texts = list(sentiment_frame(10).text)
    assert reloaded.outputs(texts) == pytest.approx(FintuneModel(model, tokenizer, meta).outputs(texts), abs=1e-6)
    assert reloaded.label_names == LABELS


def test_merged_lora_gives_same_logits_as_base_plus_adapter(tiny_bert: Path, tmp_path: Path) -> None:
    model, _, tokenizer = _prepared(tiny_bert, {"name": "lora", "r": 4})
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:  # B starts at zero; make the adapter change the output
                param.add_(torch.randn_like(param) * 0.1)
    meta = {"task": "classification", "label_names": LABELS, "max_length": 32,
            "data": {"train": "x.csv", "text_column": "text"}, "base_model": str(tiny_bert)}
    FintuneModel(model.eval(), tokenizer, meta).save(tmp_path / "adapter")
    adapter = FintuneModel.load(tmp_path / "adapter")
    assert adapter.is_adapter
    adapter.merged().save(tmp_path / "merged")
    merged = FintuneModel.load(tmp_path / "merged")
    assert not merged.is_adapter and (tmp_path / "merged" / "model.safetensors").exists()
    texts = list(sentiment_frame(10).text)
    base = FintuneModel.load(tmp_path / "adapter")
    assert merged.outputs(texts) == pytest.approx(base.outputs(texts), abs=1e-5)


def test_prompt_tuning_cannot_be_merged(tiny_bert: Path) -> None:
    from fintune.errors import FintuneError

    model, _, tokenizer = _prepared(tiny_bert, {"name": "prompt", "num_virtual_tokens": 2, "init": "random"})
    meta = {"task": "classification", "label_names": LABELS, "max_length": 32, "strategy": "prompt",
            "data": {"train": "x.csv", "text_column": "text"}, "base_model": str(tiny_bert)}
    with pytest.raises(FintuneError, match="only LoRA"):
        FintuneModel(model, tokenizer, meta).merged()
