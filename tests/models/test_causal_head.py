"""Causal LMs with a classification head: the last real token, a linear layer, like an encoder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fintune import api
from fintune.errors import ConfigError
from fintune.predictors import FintuneModel
from tests.conftest import sentiment_frame, write_config


def head_config(tmp_path: Path, llama: Path, csv: Path, name: str, strategy: dict, **model) -> Path:
    return write_config(tmp_path / f"{name}.yaml", llama, csv, tmp_path / "runs" / name,
                        model={"backbone": str(llama), "kind": "causal", "head": "classifier", "max_length": 48,
                               **model},
                        strategy=strategy,
                        train={"epochs": 4, "batch_size": 16, "lr": 3e-3, "checkpoint_every": 0, "precision": "fp32"})


@pytest.mark.parametrize("strategy", [{"name": "full"}, {"name": "lora", "r": 8}])
def test_a_causal_lm_with_a_head_learns_and_reloads(tmp_path, tiny_llama, sentiment_csv, strategy) -> None:
    run = api.train(head_config(tmp_path, tiny_llama, sentiment_csv, strategy["name"], strategy),
                    show_progress=False).run_dir
    metrics = json.loads((run / "metrics.json").read_text())
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    if strategy["name"] == "full":
        assert metrics["validation"]["accuracy"] >= 0.7, metrics["validation"]
    model = FintuneModel.load(run)
    assert model.name == "causal_head" and model.is_adapter == (strategy["name"] == "lora")
    assert type(model.model).__name__ in ("LlamaForSequenceClassification", "PeftModelForSequenceClassification")
    texts = sentiment_frame(12, seed=5)["text"].tolist()
    probs = model.outputs(texts)
    assert probs.shape == (12, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)
    if model.is_adapter:
        # The head trained in full and was saved with the adapter: reloading gives the same model.
        np.testing.assert_allclose(model.merged().outputs(texts), probs, atol=1e-4)
    assert model.servable is None and model.explanation_method == "integrated_gradients"
    if strategy["name"] == "full":
        from fintune import trust

        explained = trust.explain_text(run, "acme beats the quarter")
        assert explained.label in ("negative", "neutral", "positive") and len(explained.parts) >= 4
    if strategy["name"] == "lora":
        # Exported to ONNX like an encoder, and checked against torch by the export itself.
        out = api.export(run, format="onnx")
        report = json.loads((out / "export.json").read_text())
        assert report["passed"] and report["max_abs_diff"] < 1e-4, report


def test_the_head_reads_the_last_real_token_whatever_the_padding(tmp_path, tiny_llama, capfd) -> None:
    """A text scored alone and in a batch beside a longer one (right-padded) gets the same logits;
    loading it prints no load report (the new head is expected; a notebook stays clean)."""
    from transformers import AutoTokenizer

    from fintune.config import model_config
    from fintune.models.backbones import load_causal_head

    from transformers.utils import logging as hf_logging

    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity_warning()  # as in a fresh notebook (the CLI quiets it for the whole process)
    try:
        model = load_causal_head(model_config(backbone=str(tiny_llama), kind="causal", head="classifier"),
                                 ["a", "b"], {}).eval()
    finally:
        hf_logging.set_verbosity(before)
    err = capfd.readouterr().err
    assert "MISSING" not in err and "Loading weights" not in err and model.fintune_newly_initialized == ["score.weight"]
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    assert model.config.pad_token_id == tokenizer.pad_token_id
    short, long = "acme beats", "acme beats the quarter with very good news"
    with torch.no_grad():
        alone = model(**tokenizer([short], return_tensors="pt")).logits
        both = model(**tokenizer([short, long], return_tensors="pt", padding=True)).logits
    torch.testing.assert_close(alone[0], both[0], atol=1e-5, rtol=1e-4)


def test_a_head_needs_a_causal_classifier(tmp_path, tiny_bert, sentiment_csv) -> None:
    config = write_config(tmp_path / "bad.yaml", tiny_bert, sentiment_csv, tmp_path / "runs" / "bad",
                          model={"backbone": str(tiny_bert), "head": "classifier"})
    # model.head is a causal LM's setting: on an encoder it is an error naming the kind that reads it.
    with pytest.raises(ConfigError, match="model.head is a setting of model.kind causal, and this model.kind is text"):
        api.train(config, show_progress=False)
