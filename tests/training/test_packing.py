"""train.packing and train.batch_tokens in the training loop: when a run packs, that a packed
run trains as the padded one does, and the errors of packing: true."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from fintune import api
from fintune.errors import ConfigError
from fintune.models.inference import CUT
from fintune.strategies import build_strategy
from fintune.strategies.full import FullConfig
from fintune.strategies.prompt import PromptConfig
from fintune.training.objectives import Supervised
from fintune.models.packing import PACKED_LMS
from fintune.training.packing import plan_packing

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
    "features": ({"encoded": {**TOKENS, "features": [[1.0]]}}, "no packed form"),
    "no packed head": ({"model": "token classifier"}, "no packed form"),
    "another objective": ({"objective": lambda logits, index: logits.sum()}, "no packed form"),
}


def _decide(setting: Any, strategy: str = "full", encoded: dict | None = None, model: str = "bert",
            objective: Any = None, **flags: bool) -> Any:
    from transformers import BertConfig, BertForTokenClassification

    net = BertForTokenClassification(BertConfig(**SIZE)) if model == "token classifier" else _bert()
    objective = objective or Supervised(np.array([0]), "classification")
    return plan_packing(setting, net, _strategy(strategy), encoded or TOKENS, objective, width=8, pad_id=0,
                        **{"custom_batches": False, "dp": False, "distributed": False, "grouped": False, **flags})


def test_auto_packs_ungrouped_batches_of_a_bert_classifier_and_false_never_packs() -> None:
    assert _decide("auto") is not None and _decide(True) is not None
    assert _decide(False) is None
    # Length-grouped batches have few pads: auto leaves them padded, true still packs them.
    assert _decide("auto", grouped=True) is None and _decide(True, grouped=True) is not None


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


def _causal_lm(name: str) -> torch.nn.Module:
    import transformers

    config = getattr(transformers, name.replace("ForCausalLM", "Config"))(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, intermediate_size=64,
        vocab_size=40, pad_token_id=0, initializer_range=0.5)
    return getattr(transformers, name)(config)


@pytest.mark.parametrize("name", sorted(PACKED_LMS))
def test_packed_instruction_loss_and_gradients_equal_the_padded_ones(name: str) -> None:
    from fintune.data.batching import collate
    from fintune.models.generation import AnswerLoss

    torch.manual_seed(0)
    lm = _causal_lm(name).eval()
    # Three records, each a prompt and then its answer (the tokens from answer_start on).
    encoded = {"input_ids": [[2, 5, 6, 7, 8, 3], [2, 9, 10, 11, 12, 13, 3], [2, 14, 15, 3]],
               "answer_start": [4, 5, 2], CUT: [False] * 3}
    loss = AnswerLoss(encoded)
    index = np.arange(3)
    padded = loss(lm(**collate(encoded, index, 0)).logits, index)
    padded.backward()
    expected = {n: p.grad.clone() for n, p in lm.named_parameters() if p.grad is not None}
    lm.zero_grad()
    plan = plan_packing(True, lm, _strategy("full"), encoded, loss, width=12, pad_id=0, custom_batches=False,
                        dp=False, distributed=False, grouped=True)
    assert plan is not None
    # Instruction records pack under auto even in length-grouped batches (measured faster).
    assert plan_packing("auto", lm, _strategy("full"), encoded, loss, width=12, pad_id=0, custom_batches=False,
                        dp=False, distributed=False, grouped=True) is not None
    batch, key = plan.batcher(index, 0, 0)
    assert batch["input_ids"].shape[0] < 3  # rows share sequences
    logits = plan.forward(**batch).logits
    # Only the positions that predict an answer token are projected onto the vocabulary.
    answer_tokens = sum(len(ids) - start for ids, start in zip(encoded["input_ids"], encoded["answer_start"]))
    assert logits.shape == (answer_tokens, 40)
    packed = plan.objective(logits, key)
    torch.testing.assert_close(packed, padded, atol=1e-5, rtol=1e-5)
    packed.backward()
    for n, p in lm.named_parameters():
        if n in expected:
            torch.testing.assert_close(p.grad, expected[n], atol=2e-5, rtol=1e-3, msg=f"{name}: {n}")


def test_a_packed_instruction_run_trains_as_the_padded_run_does(tmp_path: Path, tiny_chat_llama: Path) -> None:
    from tests.conftest import sentiment_frame, write_config

    frame = sentiment_frame(48)
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps({"instruction": "what is the sentiment of this news ?", "input": t,
                                        "output": y}) + "\n" for t, y in zip(frame["text"], frame["label"])))
    steps = {}
    for packing in (True, False):
        config = write_config(tmp_path / f"{packing}.yaml", tiny_chat_llama, path, tmp_path / f"run_{packing}",
                              task="generation",
                              data={"train": str(path), "text_column": "input", "label_column": "output",
                                    "instruction_column": "instruction"},
                              model={"backbone": str(tiny_chat_llama), "kind": "causal", "max_length": 48,
                                     "max_new_tokens": 2, "dropout": 0.0},
                              train={"epochs": 1, "batch_size": 8, "lr": 3e-3, "checkpoint_every": 0,
                                     "precision": "fp32", "packing": packing})
        steps[packing] = _steps(api.train(config, show_progress=False).run_dir)
    assert len(steps[True]) == len(steps[False]) > 2
    for a, b in zip(steps[True], steps[False]):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-3, abs=1e-4)


@pytest.mark.slow  # compiling even the tiny model takes 30-45 s on 2 cores
def test_train_compile_trains_through_the_compiled_forward(make_config: Any) -> None:
    config = make_config("compiled.yaml", model={"dropout": 0.0},
                         train={"epochs": 1, "max_steps": 2, "batch_size": 8, "compile": True, "packing": False})
    plain = make_config("plain.yaml", model={"dropout": 0.0},
                        train={"epochs": 1, "max_steps": 2, "batch_size": 8, "packing": False})
    compiled, eager = (_steps(api.train(c, show_progress=False).run_dir) for c in (config, plain))
    assert [s["loss"] for s in compiled] == pytest.approx([s["loss"] for s in eager], rel=1e-3)
