"""End to end on the tiny BERT: train, the run directory, evaluate, predict, pipeline, regression."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import transformers

from fintune import api
from fintune.predictors import FintuneModel
from tests.conftest import sentiment_frame


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_bert: Path) -> api.RunResult:
    from tests.conftest import write_config

    folder = tmp_path_factory.mktemp("api_run")
    train = folder / "train.csv"
    sentiment_frame(400, seed=1).to_csv(train, index=False)
    config = write_config(folder / "c.yaml", tiny_bert, train, folder / "run",
                          data={"split": {"method": "stratified", "validation_size": 0.2, "test_size": 0.2}},
                          train={"epochs": 10, "eval_every": 10, "early_stopping": {"patience": 5}})
    return api.train(config, show_progress=False)


def test_run_directory_holds_everything(run: api.RunResult) -> None:
    d = run.run_dir
    for name in ("config.yaml", "metrics.json", "metrics.jsonl", "data_check.json", "model/config.json",
                 "model/model.safetensors", "model/README.md", "model/fintune.json",
                 "eval/validation/report.md", "eval/validation/confusion_matrix.png", "eval/test/metrics.json"):
        assert (d / name).exists(), name
    assert not (d / "checkpoint.pt").exists()
    metrics = json.loads((d / "metrics.json").read_text())
    assert metrics["label_names"] == ["negative", "neutral", "positive"]
    assert metrics["test"]["accuracy"] > 0.9  # the keyword decides the label: learnable
    low, high = metrics["test"]["intervals"]["metrics"]["accuracy"]
    assert low <= metrics["test"]["accuracy"] <= high  # a 95% bootstrap interval beside each headline metric
    assert metrics["training"]["trainable_params"] == metrics["training"]["total_params"]
    history = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == sorted(h["step"] for h in history)
    assert history[0]["step"] == 10 and "weighted_f1" in history[0]["validation"]
    card = (d / "model" / "README.md").read_text()
    assert "95% bootstrap interval" in card and "95% interval" in (d / "eval" / "test" / "report.md").read_text()
    assert "Intended use" in card and "Limits" in card and "weighted_f1" in card


def test_pipeline_loads_model_and_agrees(run: api.RunResult) -> None:
    texts = list(sentiment_frame(20, seed=9).text)
    pipe = transformers.pipeline("text-classification", model=str(run.model_dir), device="cpu")
    ours = FintuneModel.load(run.run_dir).predict(texts)
    assert [p["label"] for p in pipe(texts)] == ours


def test_evaluate_writes_report(run: api.RunResult, tmp_path: Path) -> None:
    data = tmp_path / "holdout.csv"
    sentiment_frame(40, seed=5).to_csv(data, index=False)
    metrics = api.evaluate(run.run_dir, data)
    assert metrics["n"] == 40 and metrics["accuracy"] > 0.9
    assert (run.run_dir / "eval" / "holdout" / "report.md").exists()


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_predict_adds_labels_and_probabilities(run: api.RunResult, tmp_path: Path, suffix: str) -> None:
    frame = sentiment_frame(50, seed=3).drop(columns="label").assign(id=range(50))
    src = tmp_path / "in.csv"
    frame.to_csv(src, index=False)
    out = api.predict(run.run_dir, src, tmp_path / f"out{suffix}", chunk_rows=16, show_progress=False)
    readers = {".csv": pd.read_csv, ".jsonl": lambda p: pd.read_json(p, lines=True), ".parquet": pd.read_parquet}
    result = readers[suffix](out)
    assert list(result.id.astype(int)) == list(range(50))  # 4 chunks, one file, in order (a CSV is read as text)
    probs = result[["prob_negative", "prob_neutral", "prob_positive"]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    names = np.array(["negative", "neutral", "positive"])
    assert list(result.predicted_label) == list(names[probs.argmax(axis=1)])


def test_existing_run_needs_resume_or_overwrite(run: api.RunResult) -> None:
    from fintune.errors import ConfigError

    with pytest.raises(ConfigError, match="--resume"):
        api.train(run.run_dir / "config.yaml", show_progress=False)


def test_regression_task(make_config, tmp_path: Path) -> None:
    frame = sentiment_frame(200, seed=2)
    frame["score"] = frame.label.map({"negative": -0.8, "neutral": 0.0, "positive": 0.7})
    frame["date"] = pd.date_range("2020-01-01", periods=len(frame), freq="D").astype(str)
    path = tmp_path / "scores.jsonl"
    frame.drop(columns="label").to_json(path, orient="records", lines=True)
    config = make_config(train_file=path, task="regression",
                         data={"label_column": "score", "date_column": "date",
                               "split": {"method": "time", "validation_size": 0.2, "test_size": 0.2}},
                         train={"epochs": 10})
    result = api.train(config, show_progress=False)
    test = result.metrics["test"]
    assert {"mse", "mae", "r2"} <= set(test) and test["r2"] > 0.5
    assert result.metrics["training"]["metric"] == "mse"
    assert FintuneModel.load(result.run_dir).predict(["acme plunges today"])[0] < 0


def test_early_stopping_restores_best_weights(make_config) -> None:
    # A huge learning rate makes later evaluations worse: training stops and keeps the best.
    config = make_config(train={"epochs": 6, "lr": 0.5, "eval_every": 5,
                                "early_stopping": {"metric": "accuracy", "patience": 1}})
    result = api.train(config, show_progress=False)
    training = result.metrics["training"]
    history = [json.loads(x) for x in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    best = max(h["validation"]["accuracy"] for h in history)
    assert training["best_metric"] == pytest.approx(best)
    assert result.metrics["validation"]["accuracy"] == pytest.approx(best)
    assert training["stopped_early"] == (training["global_step"] < 6 * 12)


def test_resume_of_a_finished_run_returns_its_metrics(run: api.RunResult) -> None:
    again = api.train(run.run_dir / "config.yaml", resume=True, show_progress=False)
    assert again.metrics == json.loads((run.run_dir / "metrics.json").read_text())


def test_data_check_then_train_in_the_same_folder(make_config, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fintune.cli import app

    config = make_config(train={"epochs": 1})
    result = CliRunner().invoke(app, ["data", "check", str(config)])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "runs" / "run" / "data_check.json").read_text())
    assert report["rows"]["train"] + report["rows"]["validation"] + report["rows"]["test"] == 240
    assert set(report["class_balance"]["train"]) == {"negative", "neutral", "positive"}
    assert "train" in result.output  # the printed table
    assert api.train(config, show_progress=False).metrics["validation"]["n"] == report["rows"]["validation"]


def test_lora_run_exports_a_merged_model_that_pipelines_load(make_config, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fintune.cli import app

    config = make_config(strategy={"name": "lora", "r": 4}, train={"epochs": 2, "lr": 1e-2})
    run = api.train(config, show_progress=False)
    assert (run.model_dir / "adapter_config.json").exists()
    assert not (run.model_dir / "model.safetensors").exists()  # only the adapter and the head
    result = CliRunner().invoke(app, ["export", str(run.run_dir), "--output", str(tmp_path / "merged")])
    assert result.exit_code == 0, result.output
    texts = list(sentiment_frame(20, seed=9).text)
    pipe = transformers.pipeline("text-classification", model=str(tmp_path / "merged"), device="cpu")
    assert [p["label"] for p in pipe(texts)] == FintuneModel.load(run.run_dir).predict(texts)


def test_lora_merge_at_the_end_of_training(make_config) -> None:
    config = make_config(strategy={"name": "lora", "r": 4, "merge": True}, train={"epochs": 1})
    run = api.train(config, show_progress=False)
    assert (run.model_dir / "model.safetensors").exists()
    assert not (run.model_dir / "adapter_config.json").exists()
    assert run.metrics["training"]["trainable_params"] < run.metrics["training"]["total_params"] / 2


def test_decision_threshold_is_chosen_saved_and_used(make_config, tmp_path: Path) -> None:
    frame = sentiment_frame(300, seed=6)
    frame["label"] = frame.label.map({"negative": "bad", "neutral": "good", "positive": "good"})
    path = tmp_path / "binary.csv"
    frame.to_csv(path, index=False)
    config = make_config(train_file=path, data={"label_names": ["good", "bad"]},
                         decision={"threshold": "recall", "target_recall": 1.0}, train={"epochs": 2})
    run = api.train(config, show_progress=False)
    model = FintuneModel.load(run.run_dir)
    assert model.threshold is not None and run.metrics["validation"]["threshold"] == model.threshold
    assert run.metrics["validation"]["per_class"]["bad"]["recall"] == 1.0  # the target, on validation
    texts = list(sentiment_frame(30, seed=8).text)
    probs = model.outputs(texts)
    expected = ["bad" if p >= model.threshold else "good" for p in probs[:, 1]]
    assert model.predict(texts) == expected


def test_decision_threshold_needs_two_labels(make_config) -> None:
    from fintune.errors import ConfigError

    with pytest.raises(ConfigError, match="binary"):
        api.train(make_config(decision={"threshold": "max_f1"}), show_progress=False)


def test_imbalance_options_train(make_config, tmp_path: Path) -> None:
    frame = sentiment_frame(300, seed=12)
    frame = frame[frame.label != "neutral"]
    frame = pd.concat([frame[frame.label == "positive"], frame[frame.label == "negative"].head(15)])
    path = tmp_path / "imbalanced.csv"
    frame.to_csv(path, index=False)
    config = make_config(train_file=path, train={"epochs": 4, "oversample": True, "loss": "focal",
                                                 "class_weights": True, "early_stopping": None})
    run = api.train(config, show_progress=False)
    per_epoch = -(-run.metrics["training"]["train_rows"] // 16)
    assert run.metrics["training"]["global_step"] > 4 * per_epoch * 1.3  # oversampled epochs are longer
    assert run.metrics["validation"]["per_class"]["negative"]["support"] > 0


def test_exported_folder_gives_fintunes_probabilities_in_a_pipeline(make_config, tmp_path) -> None:
    """The fitted temperature lives in fintune.json; export folds it into the classifier's
    weights, so plain transformers gives the same probabilities (and config.json says so)."""
    import json

    import numpy as np
    import transformers

    run = api.train(make_config(train={"epochs": 2}), show_progress=False)
    # 24 validation rows are too few to keep a fitted temperature; set one as a kept fit would.
    meta_path = run.model_dir / "fintune.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "temperature": 1.7}))
    model = FintuneModel.load(run.run_dir)
    assert model.temperature == pytest.approx(1.7)
    texts = list(sentiment_frame(20, seed=9).text)
    ours = model.outputs(texts)

    def pipeline_probs(folder) -> np.ndarray:
        pipe = transformers.pipeline("text-classification", model=str(folder), device="cpu", top_k=None)
        order = {name: i for i, name in enumerate(model.label_names)}
        out = np.zeros((len(texts), len(order)))
        for row, scores in enumerate(pipe(texts)):
            for item in scores:
                out[row, order[item["label"]]] = item["score"]
        return out

    raw = pipeline_probs(run.model_dir)  # the run's own folder: no temperature outside fintune
    assert not np.allclose(raw, ours, atol=1e-3)
    folded = api.export(run.run_dir, output=tmp_path / "hf")
    assert np.allclose(pipeline_probs(folded), ours, atol=1e-5)
    config = json.loads((folded / "config.json").read_text())
    assert config["fintune_temperature_folded"] == pytest.approx(model.temperature)
    assert config["fintune_temperature"] is None  # folded: nothing left to apply
    again = FintuneModel.load(folded)  # fintune on the exported folder: the same probabilities, once
    assert again.temperature is None and np.allclose(again.outputs(texts), ours, atol=1e-5)
    kept = api.export(run.run_dir, output=tmp_path / "hf_kept", fold_temperature=False)
    assert json.loads((kept / "config.json").read_text())["fintune_temperature"] == pytest.approx(model.temperature)
    assert np.allclose(pipeline_probs(kept), raw, atol=1e-6)


def test_data_check_says_how_many_texts_max_length_cuts(make_config, capsys) -> None:
    report = api.data_check(make_config(model={"max_length": 8}))
    length = report["text_length"]["train"]
    assert length["max_length"] == 8 and 0 < length["over_max_length"] <= report["rows"]["train"]
    printed = "".join(c for c in capsys.readouterr().err if not c.isspace() and c not in "│┃")
    assert "overmax_length8,cut" in printed  # the table may wrap the cell
    roomy = api.data_check(make_config("roomy.yaml", model={"max_length": 512}))
    assert roomy["text_length"]["train"]["over_max_length"] == 0


def test_predict_counts_the_rows_it_cuts(run: api.RunResult, tmp_path: Path) -> None:
    """A 10-K paragraph longer than model.max_length (32 here) is scored on its beginning: the
    CLI says how many rows that was, and --truncated-column marks them."""
    from typer.testing import CliRunner

    from fintune.cli import app

    long = " ".join(["revenue grew in every segment and margins widened"] * 12) + " but the outlook was cut"
    frame = pd.DataFrame({"text": ["acme beats", long, "guidance lowered", long]})
    frame.to_csv(tmp_path / "in.csv", index=False)
    out = CliRunner().invoke(app, ["predict", str(run.run_dir), "--input", str(tmp_path / "in.csv"), "--output",
                                   str(tmp_path / "out.csv"), "--no-progress", "--truncated-column"])
    assert out.exit_code == 0, out.output
    assert "2 of 4 rows are longer than the model reads" in " ".join(out.output.split())
    assert list(pd.read_csv(tmp_path / "out.csv")["truncated"]) == [False, True, False, True]
    from fintune.predictors import FintuneModel

    assert list(FintuneModel.load(run.run_dir).truncated(["acme beats", long])) == [False, True]


@pytest.mark.parametrize("frame, message", [
    (pd.DataFrame({"text": ["a b", "c d", "e f"] * 20, "label": ["x", 1, 2.0] * 20}),
     "column 'label' mixes text and numbers"),
    (pd.DataFrame({"text": [b"a", b"b", b"c"] * 20, "label": ["x", "y", "z"] * 20}),
     "column 'text': text must be a string, got bytes"),
    (pd.DataFrame([["a", "b", "x"]] * 60, columns=["text", "text", "label"]), "duplicate column names \\(text\\)"),
])
def test_fit_names_the_frames_problem(frame: pd.DataFrame, message: str, tmp_path: Path, tiny_bert: Path) -> None:
    from fintune.errors import DataError

    with pytest.raises(DataError, match=message) as caught:
        api.fit(frame, text_column="text", label_column="label", model={"backbone": str(tiny_bert)},
                output_dir=str(tmp_path / "fit"), show_progress=False)
    assert "the DataFrame given as" in str(caught.value) and "frames" not in str(caught.value)


def test_predict_on_a_truncated_parquet_is_one_line(run: api.RunResult, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fintune.cli import app

    pd.DataFrame({"text": ["acme beats"] * 300}).to_parquet(tmp_path / "whole.parquet")
    data = (tmp_path / "whole.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    out = CliRunner().invoke(app, ["predict", str(run.run_dir), "--input", str(tmp_path / "cut.parquet"),
                                   "--output", str(tmp_path / "o.csv")])
    assert out.exit_code == 2 and "Traceback" not in out.output and "could not read the file as Parquet" in out.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.parquet", "whole.parquet"]  # nothing partial left
