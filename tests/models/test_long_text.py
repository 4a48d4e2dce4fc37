"""Long documents (model.kind: long_text): windows, pooling, and a model that reads past the
first window where truncation cannot."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest
import torch

from fintune.config import LongTextConfig, validate_config
from fintune.errors import ConfigError
from fintune.models.long_text import WindowPooling, window_ids
from tests.conftest import COMPANIES, FILLER, NEGATIVE, NEUTRAL, POSITIVE, write_config

DOC_WORDS = 3000


SENTENCE = 8


def long_documents(n: int, seed: int) -> pd.DataFrame:
    """Documents of 3,000 neutral words (one token each); one sentence of eight words somewhere
    past token 1,000 says positive or negative."""
    rng = random.Random(seed)
    neutral = FILLER + COMPANIES + NEUTRAL
    rows = []
    for i in range(n):
        label = "positive" if i % 2 else "negative"
        words = [rng.choice(neutral) for _ in range(DOC_WORDS)]
        at = rng.randrange(1100, DOC_WORDS - SENTENCE)
        words[at:at + SENTENCE] = rng.choices(POSITIVE if label == "positive" else NEGATIVE, k=SENTENCE)
        rows.append({"text": " ".join(words), "label": label})
    return pd.DataFrame(rows)


def test_windows_cover_the_document_with_overlap(tiny_bert: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    text = " ".join(["shares"] * 100 + ["beats"] + ["shares"] * 99)
    out = window_ids(tokenizer, [text, ""], 32, LongTextConfig(stride=20, max_windows=16))
    windows, starts = out.windows[0], out.starts[0]
    assert starts == list(range(0, 200 - 30 + 1, 20)) + [180]  # the tail is read by one more window
    assert all(len(w) <= 32 and w[0] == tokenizer.cls_token_id and w[-1] == tokenizer.sep_token_id
               for w in windows)
    content = [w[1:-1] for w in windows]
    beats = tokenizer.convert_tokens_to_ids("beats")
    assert sum(beats in c for c in content) == 2  # token 100 sits in the overlap of two windows
    assert out.windows[1] == [[tokenizer.cls_token_id, tokenizer.sep_token_id]] and out.cut == 0
    capped = window_ids(tokenizer, [text], 32, LongTextConfig(stride=30, max_windows=3))
    assert len(capped.windows[0]) == 3 and capped.cut == 1


@pytest.mark.parametrize("how", ["attention", "mean", "max"])
def test_pooling_keeps_documents_apart(how: str) -> None:
    torch.manual_seed(0)
    pooling = WindowPooling(4, how)
    vectors = torch.randn(5, 4)
    doc_index = torch.tensor([0, 0, 0, 1, 1])
    docs, weights = pooling(vectors, doc_index, 2)
    alone, _ = pooling(vectors[3:], torch.tensor([0, 0]), 1)
    torch.testing.assert_close(docs[1], alone[0])  # a document's vector ignores the others' windows
    if how != "max":
        torch.testing.assert_close(weights[:3].sum(), torch.tensor(1.0))
    if how == "max":
        torch.testing.assert_close(docs[0], vectors[:3].max(0).values)


def test_stride_longer_than_a_window_is_refused() -> None:
    raw = {"data": {"train": "x.csv", "text_column": "text"},
           "model": {"kind": "long_text", "max_length": 64, "long_text": {"stride": 100}}}
    with pytest.raises(ConfigError, match="stride 100 would skip tokens"):
        validate_config(raw)


@pytest.fixture(scope="module")
def long_runs(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A long-text model and a truncating text model, trained on the same documents."""
    from fintune import api

    tmp = tmp_path_factory.mktemp("long_text")
    for name, n, seed in (("train", 96, 0), ("valid", 32, 1), ("test", 64, 2)):
        long_documents(n, seed).to_csv(tmp / f"{name}.csv", index=False)
    data = {"train": str(tmp / "train.csv"), "validation": str(tmp / "valid.csv"), "test": str(tmp / "test.csv"),
            "text_column": "text", "label_column": "label", "privacy": {"mask": False}}
    train = {"epochs": 2, "batch_size": 2, "lr": 3e-3, "checkpoint_every": 0, "precision": "fp32",
             "warmup_fraction": 0.1}
    runs = {}
    for name, model in (("long", {"kind": "long_text", "long_text": {"stride": 62, "max_windows": 64,
                                                                       "pooling": "max"}}),
                        ("truncated", {"kind": "text"})):
        config = write_config(tmp / f"{name}.yaml", tiny_bert, tmp / "train.csv", tmp / name, data=data,
                              train=train, model={"backbone": str(tiny_bert), "max_length": 64, **model})
        runs[name] = api.train(config, show_progress=False).run_dir
    return runs


def test_long_text_reads_past_the_first_window_where_truncation_cannot(long_runs: dict[str, Path]) -> None:
    import json

    scores = {name: json.loads((run / "metrics.json").read_text())["test"]["accuracy"]
              for name, run in long_runs.items()}
    assert scores["truncated"] <= 0.66, scores  # the decisive words are never in its 64 tokens: chance
    assert scores["long"] >= 0.9, scores


def test_long_text_predicts_explains_and_serves(long_runs: dict[str, Path]) -> None:
    from fastapi.testclient import TestClient

    from fintune import FintuneModel
    from fintune.config import ServeConfig
    from fintune.deploy.server import build_app
    from fintune.evaluation.explain import explain

    model = FintuneModel.load(long_runs["long"])
    frame = long_documents(6, seed=3)
    assert list(model.predict(frame)) == list(frame["label"])
    examples = model.as_examples(frame)
    # A positive document: the model answers 'negative' unless some window says otherwise, so in
    # a negative one no single window moves the score.
    explained = explain(model, examples, 1)
    top = max(explained.windows, key=lambda w: w["drop"])
    # The window that moved the score most holds the decisive sentence, and IG ranks one of its
    # words first there.
    words = frame["text"][1].split()
    position = next(i for i, w in enumerate(words) if w in POSITIVE + NEGATIVE)
    assert explained.label == "positive" and explained.top(1)[0][0] in POSITIVE
    assert top["start"] <= position + SENTENCE and position < top["start"] + 62
    # serve.max_text_chars (4,000 by default) is raised for documents of ~20,000 characters.
    served_cfg = ServeConfig(log={"enabled": False}, max_text_chars=100_000)
    with TestClient(build_app(long_runs["long"], served_cfg)) as client:
        answer = client.post("/v1/predict", json={"texts": list(frame["text"][:2])}).json()
        served = client.post("/v1/explain", json={"text": frame["text"][1]}).json()
    assert [p["label"] for p in answer["predictions"]] == list(frame["label"][:2])
    assert served["method"] == "windows" and len(served["windows"]) == len(explained.windows)


def test_explain_on_the_command_line_lists_the_windows(long_runs: dict[str, Path]) -> None:
    from typer.testing import CliRunner

    from fintune.cli import app

    text = long_documents(2, seed=4)["text"][1]  # a positive document
    result = CliRunner().invoke(app, ["explain", str(long_runs["long"]), text, "--top", "3"])
    assert result.exit_code == 0, result.output
    assert "windows: the drop in P(positive) without each" in result.output
