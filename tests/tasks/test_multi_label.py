"""task: multi_label end to end: labels as lists or separated text, a sigmoid per label,
thresholds tuned on validation and saved, metrics and plots, predict, the CLI's columns and
the server's answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient

from fintune import api
from fintune.config import ServeConfig, validate_config
from fintune.deploy.server import build_app
from fintune.errors import ConfigError, DataError
from fintune.evaluation.explain import explain
from fintune.predictors import FintuneModel
from fintune.report import write_report
from tests.conftest import topics_frame, write_config

METRICS = {"micro_f1", "macro_f1", "samples_f1", "subset_accuracy", "hamming_loss", "per_label"}


@pytest.fixture(scope="module")
def bow_run(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> Path:
    """A bag-of-words model on labels in one text cell, joined by ';'."""
    tmp = tmp_path_factory.mktemp("ml_bow")
    topics_frame(300).drop(columns="labels").to_csv(tmp / "t.csv", index=False)
    config = write_config(tmp / "c.yaml", tiny_bert, tmp / "t.csv", tmp / "run", task="multi_label",
                          data={"label_column": "tags", "label_separator": ";"},
                          model={"kind": "bow", "linear": {"C": [1, 10]}})
    return api.train(config, show_progress=False).run_dir


def test_bow_learns_the_labels_and_tunes_a_threshold_per_label(bow_run: Path) -> None:
    metrics = json.loads((bow_run / "metrics.json").read_text())
    test = metrics["test"]
    assert METRICS <= set(test) and metrics["label_names"] == ["negative", "neutral", "positive"]
    assert test["micro_f1"] > 0.9 and test["subset_accuracy"] > 0.7
    assert {"micro_f1", "subset_accuracy"} <= set(test["intervals"]["metrics"])
    assert (bow_run / "eval" / "test" / "pr_curves.png").exists()
    assert "## Per label" in (bow_run / "eval" / "test" / "report.md").read_text()
    model = FintuneModel.load(bow_run)
    thresholds = model.meta.label_thresholds
    assert thresholds is not None and len(thresholds) == 3 and all(0 < t < 1 for t in thresholds)


def test_each_label_gets_its_own_temperature_and_the_model_applies_the_kept_ones(bow_run: Path) -> None:
    calibration = json.loads((bow_run / "metrics.json").read_text())["calibration"]
    assert set(calibration["per_label"]) == {"negative", "neutral", "positive"}
    assert {"ece_before", "ece_after", "labels_scaled"} <= set(calibration)
    model = FintuneModel.load(bow_run)
    kept = [c["temperature"] for c in calibration["per_label"].values()]
    assert model.meta.label_temperatures == (kept if calibration["labels_scaled"] else None)
    assert "its own temperature" in (bow_run / "model" / "README.md").read_text()
    page = write_report(bow_run).read_text()
    assert "A temperature per label" in page and "mean label ECE before" in page
    texts = pd.DataFrame({"text": ["acme beats misses the bank", "hooli holds the stock"]})
    model.meta.label_temperatures = [2.0, 2.0, 2.0]
    softened = model.predict_proba(texts).to_numpy()
    model.meta.label_temperatures = None
    raw = model.predict_proba(texts).to_numpy()
    # A temperature above 1 pulls every probability towards one half, in the same order.
    assert (np.abs(softened - 0.5) < np.abs(raw - 0.5) + 1e-7).all()


def test_predict_gives_lists_and_one_probability_per_label(bow_run: Path, tmp_path: Path) -> None:
    model = FintuneModel.load(bow_run)
    got = model.predict(["acme beats misses the bank", "hooli holds the stock", "wayne on the quarter"])
    assert [sorted(g) for g in got] == [["negative", "positive"], ["neutral"], []]
    probs = model.predict_proba(pd.DataFrame({"text": ["acme beats misses"]}))
    assert list(probs.columns) == ["negative", "neutral", "positive"] and probs.to_numpy().min() >= 0
    pd.DataFrame({"text": ["acme beats misses", "hooli holds the stock"]}).to_csv(tmp_path / "in.csv", index=False)
    out = pd.read_csv(api.predict(bow_run, tmp_path / "in.csv", tmp_path / "out.csv", show_progress=False),
                      keep_default_na=False)
    # The training file's separator joins the labels, so the output reads back as the input did.
    assert out["predicted_labels"].tolist() == ["negative;positive", "neutral"]
    assert {"prob_negative", "prob_neutral", "prob_positive"} <= set(out.columns)


def test_the_server_answers_a_list_of_labels(bow_run: Path) -> None:
    with TestClient(build_app(bow_run, ServeConfig(log={"enabled": False}))) as client:
        got = client.post("/v1/predict", json={"texts": ["acme beats misses"]}).json()["predictions"][0]
    assert sorted(got["labels"]) == ["negative", "positive"] and "label" not in got  # None fields are left out
    assert set(got["probabilities"]) == {"negative", "neutral", "positive"}


def test_an_encoder_reads_list_labels_with_one_global_threshold(tmp_path: Path, tiny_bert: Path) -> None:
    topics_frame(200, seed=3).to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    config = write_config(tmp_path / "c.yaml", tiny_bert, tmp_path / "t.jsonl", tmp_path / "run", task="multi_label",
                          data={"label_column": "labels"}, decision={"label_thresholds": "global"},
                          train={"epochs": 4})
    result = api.train(config, show_progress=False)
    assert result.metrics["validation"]["micro_f1"] > 0.6
    thresholds = FintuneModel.load(result.run_dir).meta.label_thresholds
    assert thresholds is not None and len(set(thresholds)) == 1
    # The ONNX export scores the same sigmoids and keeps the thresholds.
    onnx = FintuneModel.load(api.export(result.run_dir, format="onnx"))
    texts = ["acme beats", "globex misses the bank"]
    np.testing.assert_allclose(onnx.outputs(texts), FintuneModel.load(result.run_dir).outputs(texts), atol=1e-4)
    assert onnx.meta.label_thresholds == thresholds
    # Explanations attribute the most probable label's own sigmoid (a softmax would give another number).
    model = FintuneModel.load(result.run_dir)
    probs = model.outputs(texts[:1])[0]
    why = explain(model, model.as_examples(texts[:1]))
    assert why.label == model.label_names[int(probs.argmax())] and why.probability == pytest.approx(probs.max(), abs=1e-5)
    assert [word for word, _ in why.parts] == ["acme", "beats"]


def test_a_causal_lm_with_a_classification_head_trains_on_labels(tmp_path: Path, tiny_llama: Path) -> None:
    topics_frame(80, seed=5).to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    config = write_config(tmp_path / "c.yaml", tiny_llama, tmp_path / "t.jsonl", tmp_path / "run", task="multi_label",
                          data={"label_column": "labels"}, model={"kind": "causal", "head": "classifier",
                                                                  "backbone": str(tiny_llama), "max_length": 32},
                          train={"epochs": 1})
    result = api.train(config, show_progress=False)
    model = FintuneModel.load(result.run_dir)
    out = model.outputs(["acme beats", "globex misses"])
    assert out.shape == (2, 3) and ((out > 0) & (out < 1)).all()
    assert not np.allclose(out.sum(axis=1), 1.0)  # sigmoids, not a softmax


def test_a_label_the_model_does_not_know_names_its_row(bow_run: Path, tmp_path: Path) -> None:
    pd.DataFrame({"text": ["acme beats", "acme misses"], "tags": ["positive", "negative;bullish"]}).to_csv(
        tmp_path / "e.csv", index=False)
    with pytest.raises(DataError, match=r"row 2.*label .bullish. is not one of the labels the model was trained on"):
        api.evaluate(bow_run, tmp_path / "e.csv")
    pd.DataFrame({"text": ["acme beats", "acme misses", "hooli holds"], "tags": ["positive", "negative", ""]}).to_csv(
        tmp_path / "ok.csv", index=False)
    metrics = api.evaluate(bow_run, tmp_path / "ok.csv")
    assert metrics["n"] == 3 and metrics["micro_f1"] is not None and "micro_f1" in metrics["shift_vs_run"]


def test_a_null_is_an_error_where_an_empty_list_means_no_label(tmp_path: Path, tiny_bert: Path) -> None:
    frame = topics_frame(60).drop(columns="tags")
    frame["labels"] = frame["labels"].astype(object)
    frame.at[3, "labels"] = None
    frame.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    config = write_config(tmp_path / "c.yaml", tiny_bert, tmp_path / "t.jsonl", tmp_path / "run", task="multi_label",
                          data={"label_column": "labels"}, model={"kind": "bow"})
    with pytest.raises(DataError, match="row 4.*give an empty list for a row with no label"):
        api.train(config, show_progress=False)


@pytest.mark.parametrize(("section", "message"), [
    ({"data": {"label_separator": ";"}}, "data.label_separator .* is for task multi_label"),
    ({"task": "multi_label", "decision": {"threshold": "max_f1"}}, "decides each label by its own threshold"),
    ({"task": "multi_label", "train": {"class_weights": True}}, "decides each label by its own threshold"),
    ({"task": "multi_label", "model": {"kind": "gbm"}, "data": {"feature_columns": ["x"], "text_column": None}},
     "task multi_label needs model.kind text, bow or causal"),
    ({"task": "multi_label", "model": {"kind": "causal", "backbone": "smollm2"}}, "needs model.head: classifier"),
])
def test_the_config_refuses_what_multi_label_cannot_do(section: dict, message: str) -> None:
    raw = {"data": {"train": "t.csv", "text_column": "text"}}
    for key, value in section.items():
        raw[key] = {**raw[key], **value} if isinstance(value, dict) and key in raw else value
    with pytest.raises(ConfigError, match=message):
        validate_config(yaml.safe_load(yaml.safe_dump(raw)))


def test_spark_scores_labels_as_fintune_predict_does(bow_run: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil
    import sys

    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("Spark's local mode needs a Java runtime (17+)")
    from pyspark.sql import SparkSession

    from fintune.engines.spark import predict_udf

    frame = pd.DataFrame({"id": range(6), "text": topics_frame(6, seed=9)["text"]})
    frame.to_csv(tmp_path / "in.csv", index=False)
    local = pd.read_csv(api.predict(bow_run, tmp_path / "in.csv", tmp_path / "out.csv", show_progress=False),
                        keep_default_na=False)
    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)
    spark = (SparkSession.builder.master("local[1]").appName("fintune-multi-label")
             .config("spark.pyspark.python", sys.executable).config("spark.ui.enabled", "false").getOrCreate())
    try:
        udf = predict_udf(bow_run, batch_size=8)
        out = (spark.createDataFrame(frame).withColumn("fintune", udf(*udf.columns)).select("id", "fintune.*")
               .toPandas().sort_values("id"))
    finally:
        spark.stop()
    assert out["predicted_labels"].tolist() == local["predicted_labels"].tolist()
    np.testing.assert_allclose(out["prob_neutral"], local["prob_neutral"], atol=1e-6)
