"""train.packing and train.batch_tokens in the training loop: when a run packs, that a packed
run trains as the padded one does, and the errors of packing: true."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from fintune import api
from fintune.errors import ConfigError
from fintune.models.inference import CUT
from fintune.strategies import build_strategy
from fintune.strategies.full import FullConfig
from fintune.strategies.prompt import PromptConfig
from fintune.training.packing import packing_for

SIZE = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32,
        "vocab_size": 30, "num_labels": 2}


def _bert() -> torch.nn.Module:
    from transformers import BertConfig, BertForSequenceClassification

    return BertForSequenceClassification(BertConfig(**SIZE))


def _strategy(name: str) -> Any:
    return build_strategy({"full": FullConfig(), "prompt": PromptConfig()}[name])


TOKENS = {"input_ids": [[2, 5, 3]], CUT: [False]}
# (what differs from a packable run, the reason packing: true names)
REFUSALS: dict[str, tuple[dict[str, Any], str]] = {
    "custom batches": ({"custom_batches": True}, "batches of its own"),
    "dp-sgd": ({"dp": True}, "DP-SGD"),
    "several processes": ({"distributed": True}, "DistributedDataParallel"),
    "prompt learning": ({"strategy": "prompt"}, "virtual tokens"),
    "features": ({"encoded": {**TOKENS, "features": [[1.0]]}}, "more than token ids"),
    "no packed head": ({"model": "token classifier"}, "has no packed head"),
}


def _decide(setting: Any, strategy: str = "full", encoded: dict | None = None, model: str = "bert",
            **flags: bool) -> Any:
    from transformers import BertConfig, BertForTokenClassification

    net = BertForTokenClassification(BertConfig(**SIZE)) if model == "token classifier" else _bert()
    return packing_for(setting, net, _strategy(strategy), encoded or TOKENS,
                       **{"custom_batches": False, "dp": False, "distributed": False, **flags})


def test_auto_packs_a_bert_classifier_and_false_never_packs() -> None:
    assert _decide("auto") is not None and _decide(True) is not None
    assert _decide(False) is None


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_auto_pads_quietly_where_packing_is_not_exact_and_true_says_why(case: str) -> None:
    change, reason = REFUSALS[case]
    assert _decide("auto", **change) is None
    with pytest.raises(ConfigError, match=reason):
        _decide(True, **change)


def _steps(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "steps.jsonl").read_text().splitlines()]


def test_a_packed_run_trains_as_the_padded_run_does(make_config: Any) -> None:
    runs = {}
    for packing in (True, False):
        # Dropout off: its random masks have the shape of the batch, packed or padded.
        config = make_config(f"packing_{packing}.yaml", model={"dropout": 0.0},
                             train={"epochs": 1, "packing": packing, "batch_size": 8})
        runs[packing] = api.train(config, show_progress=False)
    packed, padded = (_steps(runs[p].run_dir) for p in (True, False))
    assert len(packed) == len(padded) > 3
    for a, b in zip(packed, padded):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-3, abs=1e-4)
    assert runs[True].metrics["validation"]["accuracy"] == pytest.approx(runs[False].metrics["validation"]["accuracy"])


def test_a_token_budget_batches_by_tokens(make_config: Any) -> None:
    config = make_config(train={"epochs": 1, "batch_tokens": 64, "batch_size": 8})
    result = api.train(config, show_progress=False)
    steps = _steps(result.run_dir)
    rows = result.metrics["training"]["train_rows"]
    # Short rows come several to a 64-token batch: fewer steps than rows, more than rows / 8.
    assert rows / 64 < len(steps) < rows
