"""Causal LMs as classifiers by instruction: prompt, label-word scoring, strategies, reload."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fintune import api
from fintune.data import Examples
from fintune.errors import ConfigError, FintuneError
from fintune.models.causal import CausalClassifier, PromptFormat
from fintune.predictors import FintuneModel
from tests.conftest import sentiment_frame, write_config

def texts(*items: str) -> Examples:
    return Examples(list(items), None, None, "test")


PROMPT = "What is the sentiment of this news? Answer with one of: {choices}.\nNews: {text}\nAnswer:"


def causal_config(tmp_path: Path, llama: Path, csv: Path, name: str, strategy: dict, **sections) -> Path:
    model = {"backbone": str(llama), "kind": "causal", "max_length": 48, "prompt": PROMPT, **sections.pop("model", {})}
    train = {"epochs": 4, "batch_size": 16, "lr": 3e-3, "checkpoint_every": 0, "precision": "fp32", **sections.pop("train", {})}
    return write_config(tmp_path / f"{name}.yaml", llama, csv, tmp_path / "runs" / name, model=model,
                        strategy=strategy, train=train, **sections)


@pytest.mark.parametrize(("name", "strategy", "extra"), [
    ("full", {"name": "full"}, {}),
    ("lora", {"name": "lora", "r": 8, "modules_to_save": ["lm_head"]}, {"train": {"lr": 1e-2}}),
    ("multi-token", {"name": "full"}, {"model": {"label_words": {"negative": "very bad", "positive": "very good"}},
                                       "train": {"epochs": 8, "early_stopping": None}}),
])
def test_causal_classifier_learns_and_reloads(tmp_path, tiny_llama, sentiment_csv, name, strategy, extra) -> None:
    run = api.train(causal_config(tmp_path, tiny_llama, sentiment_csv, name, strategy, **extra),
                    show_progress=False).run_dir
    metrics = json.loads((run / "metrics.json").read_text())
    if strategy["name"] == "full":
        assert metrics["validation"]["accuracy"] >= 0.7, metrics["validation"]
    else:
        # Adapters on a random 2-layer LM (frozen random embeddings) learn the answer format, not
        # the keywords, in a few epochs; a pretrained LM learns both (benchmarks/causal_lm.py).
        history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert history[-1]["train_loss"] < 0.6 * history[0]["train_loss"]
    model = FintuneModel.load(run)
    assert isinstance(model.model, CausalClassifier) and model.is_adapter == (strategy["name"] == "lora")
    texts = sentiment_frame(12, seed=5)["text"].tolist()
    probs = model.outputs(texts)
    assert probs.shape == (12, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)
    # The answer is always one of the labels: free text can never come back.
    assert set(model.predict(texts)) <= {"negative", "neutral", "positive"}
    if model.is_adapter:
        np.testing.assert_allclose(model.merged().outputs(texts), probs, atol=1e-4)
    # The saved language model loads with transformers alone.
    from transformers import AutoModelForCausalLM
    if not model.is_adapter:
        assert AutoModelForCausalLM.from_pretrained(run / "model") is not None


def test_label_scores_are_the_language_model_log_probabilities(tiny_llama) -> None:
    """Scoring against a plain forward pass of prompt + answer, one row at a time."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    lm = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    prompt = PromptFormat(tokenizer, PROMPT, ["very bad", "neutral", "very good"])
    model = CausalClassifier(lm, prompt.label_ids, tokenizer.pad_token_id).eval()
    encoded = prompt.encode(texts("acme beats the quarter", "globex misses"), 48)
    width = max(map(len, encoded["input_ids"]))
    ids = torch.tensor([r + [0] * (width - len(r)) for r in encoded["input_ids"]])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in encoded["input_ids"]])
    with torch.no_grad():
        scores = model(input_ids=ids, attention_mask=mask).logits
        for i, row in enumerate(encoded["input_ids"]):
            for j, answer in enumerate(prompt.label_ids):
                logp = torch.log_softmax(lm(torch.tensor([row + answer])).logits[0], -1)
                expected = sum(logp[len(row) - 1 + t, tok] for t, tok in enumerate(answer))
                assert scores[i, j].item() == pytest.approx(expected.item(), abs=1e-4)


def test_long_text_keeps_the_instruction_and_the_answer_cue(tiny_llama) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    prompt = PromptFormat(tokenizer, PROMPT, ["negative", "neutral", "positive"])
    ids = prompt.encode(texts("acme " * 200), 40)["input_ids"][0]
    assert len(ids) == 40 and ids[-len(prompt.suffix_ids):] == prompt.suffix_ids
    assert tokenizer.decode(ids[-2:]).replace(" ", "") == "answer:"


def test_qlora_without_cuda_says_what_to_do(tmp_path, tiny_llama, sentiment_csv) -> None:
    config = causal_config(tmp_path, tiny_llama, sentiment_csv, "qlora", {"name": "qlora"})
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(FintuneError, match="CUDA GPU.*use strategy lora"):
        api.train(config, show_progress=False)
    assert not (tmp_path / "runs" / "qlora").exists()


@pytest.mark.parametrize(("sections", "message"), [
    ({"task": "regression"}, "classifies text by instruction"),
    ({"strategy": {"name": "prompt"}}, "trains with strategy"),
])
def test_causal_config_errors(tmp_path, tiny_llama, sentiment_csv, sections, message) -> None:
    strategy = sections.pop("strategy", {"name": "full"})
    config = causal_config(tmp_path, tiny_llama, sentiment_csv, "bad", strategy, **sections)
    with pytest.raises(ConfigError, match=message):
        api.load_run_config(config)


def test_gradient_checkpointing_and_accumulation(tmp_path, tiny_llama, sentiment_csv) -> None:
    config = causal_config(tmp_path, tiny_llama, sentiment_csv, "gc", {"name": "full"},
                           train={"epochs": 1, "batch_size": 8, "grad_accum_steps": 3, "gradient_checkpointing": True})
    result = api.train(config, show_progress=False)
    training = result.metrics["training"]
    batches = -(-training["train_rows"] // 8)
    assert training["global_step"] == -(-batches // 3)


def test_causal_runs_serve_and_refuse_onnx_clearly(tmp_path, tiny_llama, sentiment_csv) -> None:
    from fastapi.testclient import TestClient

    from fintune.config import ServeConfig
    from fintune.deploy.server import build_app

    run = api.train(causal_config(tmp_path, tiny_llama, sentiment_csv, "serve", {"name": "full"},
                                  train={"epochs": 1}), show_progress=False).run_dir
    with TestClient(build_app(run, ServeConfig())) as client:
        answer = client.post("/v1/predict", json={"texts": ["acme beats the quarter"]}).json()
    assert answer["predictions"][0]["label"] in ("negative", "neutral", "positive")
    with pytest.raises(FintuneError, match="causal LMs is not supported"):
        api.export(run, format="onnx")
    assert (api.export(run, format="hf") / "model.safetensors").exists()


def test_zero_epochs_evaluates_the_backbone_as_it_is(tmp_path, tiny_chat_llama, sentiment_csv) -> None:
    """train.epochs 0: the zero-shot baseline; the saved model is the backbone, unchanged."""
    from transformers import AutoModelForCausalLM

    config = causal_config(tmp_path, tiny_chat_llama, sentiment_csv, "zero", {"name": "full"},
                           model={"prompt": None, "backbone": str(tiny_chat_llama)}, train={"epochs": 0})
    run = api.train(config, show_progress=False).run_dir
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 <= metrics["validation"]["accuracy"] <= 1 and metrics["training"]["global_step"] == 0
    saved = AutoModelForCausalLM.from_pretrained(run / "model")
    original = AutoModelForCausalLM.from_pretrained(tiny_chat_llama)
    for (name, a), (_, b) in zip(saved.state_dict().items(), original.state_dict().items()):
        assert torch.equal(a, b), name
    assert FintuneModel.load(run).inputs.prompt.chat is not None
