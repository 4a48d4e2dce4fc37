"""Training taggers end to end on the tiny BERT: every strategy that applies, with and
without a CRF; save and reload; entities with offsets; predict and evaluate; the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from fintune import api
from fintune.cli import app
from fintune.predictors import FintuneModel
from tests.tagging.conftest import tagged_sentences, write_conll, write_jsonl

# strategy, model options, the least test F1 it reaches in 6 epochs, trainable share of parameters
CASES = [
    ("full", {}, 0.9, (0.99, 1.0)),
    ("full", {"crf": True}, 0.9, (0.99, 1.0)),
    ("full", {"crf": True, "lstm_hidden": 16, "case_features": True}, 0.8, (0.99, 1.0)),
    ("lora", {}, 0.8, (0.05, 0.3)),
    ("lora", {"crf": True}, 0.8, (0.05, 0.3)),
    ("freeze", {"crf": True}, 0.0, (0.0, 0.05)),  # the head and CRF alone: trains, learns little in 6 epochs
    ("freeze", {"lstm_hidden": 16}, 0.0, (0.05, 0.2)),  # the LSTM trains above the frozen encoder
    ("gradual", {}, 0.6, (0.99, 1.0)),
]


@pytest.mark.parametrize(("strategy", "options", "min_f1", "share"), CASES,
                         ids=[f"{s}-{'-'.join(o) or 'plain'}" for s, o, _, _ in CASES])
def test_strategies_train_save_and_reload(make_ner_config, strategy: str, options: dict, min_f1: float,
                                          share: tuple[float, float]) -> None:
    extra = {"strategy": {"name": strategy, "r": 8} if strategy == "lora" else {"name": strategy}}
    if strategy == "lora":
        extra["train"] = {"lr": 2e-2}
    config = make_ner_config(f"{strategy}_{'_'.join(options)}.yaml", model=options, **extra)
    result = api.train(config, show_progress=False)
    test, training = result.metrics["test"], result.metrics["training"]
    assert test["f1"] >= min_f1
    assert share[0] <= training["trainable_params"] / training["total_params"] <= share[1]
    history = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert set(test["per_type"]) == {"ORG", "LOC"}
    assert (result.run_dir / "eval" / "test" / "report.md").exists()
    assert (result.run_dir / "eval" / "test" / "per_type_f1.png").exists()
    # Reloaded from disk, the tagger gives the tags it was scored with.
    model = FintuneModel.load(result.run_dir)
    sentences = [t for t, _ in tagged_sentences(30, seed=5)]
    assert model.tags(sentences) == model.tags(sentences)
    reloaded = FintuneModel.load(result.model_dir)
    assert reloaded.tags(sentences) == model.tags(sentences)
    assert (result.model_dir / "tagger_head.safetensors").exists() == bool(options)


def test_entities_point_into_the_raw_text(make_ner_config) -> None:
    result = api.train(make_ner_config(model={"crf": True}), show_progress=False)
    model = FintuneModel.load(result.run_dir)
    text = "Acme  bank beats, and Hooli plunges; ＧＬＯＢＥＸ lists."  # full-width letters are cleaned (NFKC)
    found = model.entities([text, "nothing here"])
    assert [(e.type, e.text) for e in found[0]] == [("ORG", "Acme  bank"), ("LOC", "Hooli"), ("ORG", "ＧＬＯＢＥＸ")]
    assert all(text[e.start:e.end] == e.text and 0 < e.score <= 1 for e in found[0])
    assert found[1] == []
    assert model.entities(["   ", ""]) == [[], []]  # no words: nothing reaches the model
    # Words given as lists: offsets into the words joined by single spaces.
    by_words = model.entities_of_tokens([["acme", "bank", "beats", "hooli"]])[0]
    assert [(e.type, e.start, e.end) for e in by_words] == [("ORG", 0, 9), ("LOC", 16, 21)]
    assert model.predict(["acme beats"])[0][0].type == "ORG"
    # Progress counts sentences, also when a long one runs as several chunks (max_length 32).
    done: list[int] = []
    long = [["acme", "beats"] * 25, ["hooli"]]
    model.tags(long, batch_size=1, on_batch=done.append)
    assert sum(done) == 2 and len(done) > 2
    with pytest.raises(Exception, match="tags words"):
        model.outputs(["acme"])


def test_predict_and_evaluate_files(make_ner_config, tmp_path: Path) -> None:
    result = api.train(make_ner_config(), show_progress=False)
    texts = tmp_path / "news.csv"
    pd.DataFrame({"text": ["acme bank beats hooli", "weak quarter"]}).to_csv(texts, index=False)
    out = api.predict(result.run_dir, texts, tmp_path / "out.csv", show_progress=False)
    rows = pd.read_csv(out)
    first = json.loads(rows["entities"][0])
    assert [(e["type"], e["text"], e["start"], e["end"]) for e in first] == [("ORG", "acme bank", 0, 9),
                                                                           ("LOC", "hooli", 16, 21)]
    assert json.loads(rows["entities"][1]) == []
    words = write_jsonl(tmp_path / "words.jsonl", tagged_sentences(5, seed=11))
    out = api.predict(result.run_dir, words, tmp_path / "out.jsonl", show_progress=False)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(isinstance(r["entities"], list) for r in records) and len(records) == 5
    # A CoNLL file scores as well as JSONL does.
    conll = write_conll(tmp_path / "held.conll", tagged_sentences(40, seed=12))
    metrics = api.evaluate(result.run_dir, conll)
    assert metrics["f1"] > 0.8 and (result.run_dir / "eval" / "held" / "metrics.json").exists()


def test_cli_train_predict_and_errors(make_ner_config, tmp_path: Path) -> None:
    runner = CliRunner()
    config = make_ner_config(train={"epochs": 1})
    out = runner.invoke(app, ["train", str(config)])
    assert out.exit_code == 0, out.output
    run = tmp_path / "runs" / "ner"
    card = (run / "model" / "README.md").read_text()
    assert "pipeline_tag: token-classification" in card and "entity types LOC, ORG" in card
    bad = tmp_path / "no_text.csv"
    pd.DataFrame({"body": ["acme"]}).to_csv(bad, index=False)
    out = runner.invoke(app, ["predict", str(run), "--input", str(bad), "--output", str(tmp_path / "o.csv")])
    assert out.exit_code == 2 and "text column 'text'" in out.output


def test_resume_gives_the_same_tagger(make_ner_config, tmp_path: Path) -> None:
    from fintune.errors import TrainingStopped

    straight = api.train(make_ner_config("a.yaml", train={"epochs": 2}), show_progress=False)
    config = make_ner_config("b.yaml", train={"epochs": 2, "checkpoint_every": 5})
    calls = {"n": 0}

    def stop_after_first(step: int, metrics: dict) -> None:
        calls["n"] += 1
        raise TrainingStopped("stop")  # as a kill after the first evaluation would

    with pytest.raises(TrainingStopped):
        api.train(config, show_progress=False, on_evaluate=stop_after_first)
    resumed = api.train(config, resume=True, show_progress=False)
    assert resumed.metrics["test"]["f1"] == pytest.approx(straight.metrics["test"]["f1"])
    assert resumed.metrics["training"]["resumed_from_step"] is not None


def test_lora_tagger_exports_merged_and_loads_in_a_pipeline(make_ner_config, tmp_path: Path) -> None:
    from transformers import pipeline

    from fintune.errors import FintuneError

    config = make_ner_config(model={"crf": True, "case_features": True}, strategy={"name": "lora", "r": 8},
                             train={"lr": 2e-2})
    result = api.train(config, show_progress=False)
    merged_dir = api.export(result.run_dir)
    model, merged = FintuneModel.load(result.run_dir), FintuneModel.load(merged_dir)
    assert model.is_adapter and not merged.is_adapter
    sentences = [t for t, _ in tagged_sentences(30, seed=5)]
    assert merged.tags(sentences) == model.tags(sentences)
    # The folder is a plain token-classification model: transformers' pipeline reads it as is.
    tagger = pipeline("token-classification", model=str(merged_dir))
    assert {r["entity"] for r in tagger("acme bank beats hooli")} <= set(model.tag_names)
    with pytest.raises(FintuneError, match="ONNX export covers sentence-level models"):
        api.export(result.run_dir, format="onnx")
    from fintune.config import ServeConfig
    from fintune.deploy.server import build_app

    with pytest.raises(FintuneError, match="token_classification run"):
        build_app(result.run_dir, ServeConfig())
