"""DPO: the loss equals TRL's on the same pairs; training moves the policy toward the chosen answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fintune import api
from fintune.config import model_config
from fintune.data import Examples
from fintune.errors import ConfigError
from fintune.models.backbones import generation_format
from fintune.models.inference import Inputs
from fintune.strategies.dpo import Dpo, DpoStrategyConfig
from fintune.training.preference import build_objective
from tests.conftest import sentiment_frame, write_config

OPPOSITE = {"positive": "negative", "negative": "positive", "neutral": "positive"}


def pairs(n: int, seed: int = 0) -> list[dict]:
    frame = sentiment_frame(n, seed=seed)
    return [{"prompt": t, "chosen": y, "rejected": OPPOSITE[y]} for t, y in zip(frame["text"], frame["label"])]


@pytest.mark.parametrize("sft_weight", [0.0, 0.7])
def test_the_loss_is_trls(tiny_llama, tmp_path, sft_weight) -> None:
    """Policy = the tiny LM with a LoRA adapter (nudged off zero), reference = adapter disabled;
    TRL's DPOTrainer computes its loss on the very same [chosen; rejected] batch (with the RPO
    term: TRL's "sft" loss weighted by ``sft_weight``), and the reference log-probs equal the
    plain model's."""
    trl = pytest.importorskip("trl")
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    strategy = Dpo(DpoStrategyConfig(r=4, beta=0.3, dropout=0.0, sft_weight=sft_weight))
    torch.manual_seed(0)
    model = strategy.prepare(AutoModelForCausalLM.from_pretrained(tiny_llama))
    with torch.no_grad():  # LoRA starts as the identity; move it so policy and reference differ
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)
    rows = pairs(6)
    examples = Examples([r["prompt"] for r in rows], np.array([r["chosen"] for r in rows], dtype=object), None, "t",
                        parts={"rejected": np.array([r["rejected"] for r in rows], dtype=object)})
    fmt = generation_format(model_config(backbone=str(tiny_llama), kind="causal"), tokenizer, False).with_answers()
    objective, batches = build_objective(Dpo.objective, strategy.config, model, Inputs.of_prompt(tokenizer, 48, fmt),
                                         examples)
    model.train()
    for module in model.modules():  # no dropout: both sides must see the same function
        module.training = False
    index = np.arange(len(rows))
    batch, key = batches(index)
    ours = objective(model(**batch).logits, key)

    completion = torch.zeros_like(batch["input_ids"])
    starts = batches.encoded["answer_start"]
    for j, i in enumerate(batches.rows(index)):
        completion[j, starts[i]:len(batches.encoded["input_ids"][i])] = 1
    losses = {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, sft_weight]} if sft_weight else \
        {"loss_type": ["sigmoid"]}
    args = trl.DPOConfig(output_dir=str(tmp_path / "trl"), beta=0.3, report_to=[], use_cpu=True, **losses)
    trainer = trl.DPOTrainer(model=model, args=args, processing_class=tokenizer,
                             train_dataset=Dataset.from_list(rows))
    # TRL copies an existing adapter as its reference; fintune's is the adapter disabled. The
    # reference log-probs are handed to TRL as precomputed, so TRL computes the policy's and the loss.
    trainer.precompute_ref_logps = True
    ref = objective.reference[batches.rows(index)]
    inputs = {**batch, "completion_mask": completion, "ref_chosen_logps": ref[:len(index)],
              "ref_rejected_logps": ref[len(index):]}
    theirs = trainer._compute_loss(trainer.model, inputs, False)
    theirs = theirs[0] if isinstance(theirs, tuple) else theirs
    torch.testing.assert_close(ours.float(), theirs.float(), atol=1e-5, rtol=1e-5)
    plain = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    with torch.no_grad():
        expected = objective.scorer.answer_logps(plain(**batch).logits, batches.rows(index))
    torch.testing.assert_close(ref, expected, atol=1e-5, rtol=1e-5)


def dpo_config(tmp_path: Path, llama: Path, **sections) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in pairs(80)))
    return write_config(tmp_path / "dpo.yaml", llama, path, tmp_path / "runs" / "dpo", task="generation",
                        data={"train": str(path), "text_column": "prompt", "label_column": "chosen",
                              "rejected_column": "rejected", **sections.pop("data", {})},
                        model={"backbone": str(llama), "kind": "causal", "max_length": 48, "max_new_tokens": 2},
                        strategy=sections.pop("strategy", {"name": "dpo", "r": 8, "beta": 0.5}),
                        train={"epochs": 6, "batch_size": 16, "lr": 1e-2, "checkpoint_every": 0, "precision": "fp32"})


def test_dpo_learns_to_prefer_the_chosen_answers(tmp_path, tiny_chat_llama) -> None:
    run = api.train(dpo_config(tmp_path, tiny_chat_llama), show_progress=False).run_dir
    history = [json.loads(line) for line in (run / "steps.jsonl").read_text().splitlines()]
    # At the start the policy is the reference: every pair's loss is log 2.
    assert history[0]["loss"] == pytest.approx(np.log(2), abs=1e-3)
    # A random 2-layer LM with adapters learns slowly; the loss falls well below log 2 all the same.
    assert np.mean([h["loss"] for h in history[-3:]]) < 0.8 * np.log(2)
    meta = json.loads((run / "model" / "fintune.json").read_text())
    assert meta["strategy"] == "dpo" and meta["predictor"] == "generation"


def test_dpo_and_the_rejected_column_go_together(tmp_path, tiny_llama) -> None:
    with pytest.raises(ConfigError, match="data.rejected_column"):
        api.load_run_config(dpo_config(tmp_path, tiny_llama, strategy={"name": "lora"}))
