"""fintune from a notebook: DataFrames and Datasets in, aligned pandas objects out, the
public names listed for tab completion, and clear errors for inputs it cannot read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fintune
from tests.conftest import credit_frame, sentiment_frame

TRAIN = {"epochs": 4, "batch_size": 16, "lr": 3e-3, "checkpoint_every": 0, "precision": "fp32"}


def test_a_notebook_session_end_to_end(tiny_bert: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FINTUNE_HOME", str(tmp_path / "home"))
    frame = sentiment_frame(240)
    frame.index = [f"tweet-{i}" for i in range(len(frame))]  # an index of the user's own
    held = sentiment_frame(40, seed=9)
    held.index = np.arange(1000, 1040)

    model = fintune.fit(frame, test=held, text_column="text", label_column="label", output_dir=tmp_path / "nb", seed=7,
                        model={"backbone": str(tiny_bert), "max_length": 32}, train=TRAIN, show_progress=False)
    assert model.run_dir == tmp_path / "nb" and model.metrics["test"]["n"] == 40
    assert model.metrics["test"]["accuracy"] > 0.8
    # The run's config names the frames as Parquet files in fintune's cache, named by content.
    saved = fintune.load_config(tmp_path / "nb" / "config.yaml")
    assert Path(saved.data.train).parent == tmp_path / "home" / "frames" and saved.data.train.endswith(".parquet")
    assert pd.read_parquet(saved.data.train)["text"].tolist() == frame["text"].tolist()

    labels = model.predict(held)
    assert isinstance(labels, pd.Series) and labels.index.equals(held.index) and labels.name == "predicted_label"
    assert (labels == held["label"]).mean() > 0.8
    probs = model.predict_proba(held)
    assert isinstance(probs, pd.DataFrame) and probs.index.equals(held.index)
    assert list(probs.columns) == model.label_names and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs.idxmax(axis=1) == labels).all()
    texts = held["text"].tolist()[:5]
    assert model.predict(texts) == labels.tolist()[:5]  # a list in, a list out
    assert np.allclose(model.predict_proba(texts), probs.to_numpy()[:5], atol=1e-6)
    assert model.predict(held["text"]).index.equals(held.index)  # a Series keeps its index too

    # A Hugging Face Dataset works as a DataFrame does; FintuneModel.fit is fintune.fit.
    from datasets import Dataset

    assert model.predict(Dataset.from_pandas(held.reset_index(drop=True))) == labels.tolist()
    again = fintune.FintuneModel.fit(Dataset.from_pandas(frame.reset_index(drop=True)),
                                     config=tmp_path / "nb" / "config.yaml", output_dir=tmp_path / "nb2",
                                     show_progress=False)
    assert fintune.load_config(tmp_path / "nb2" / "config.yaml").data.train == saved.data.train  # same content
    assert again.predict(texts) == model.predict(texts)


def test_tables_and_regression_come_back_aligned(tiny_bert: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FINTUNE_HOME", str(tmp_path / "home"))
    frame = credit_frame(300)
    noise = np.random.default_rng(0).normal(0, 0.3, len(frame))
    frame["score"] = frame["debt_ratio"] * 3 + (frame["purpose"] == "business") + noise - 5
    model = fintune.fit(frame, task="regression", label_column="score", output_dir=tmp_path / "reg",
                        data={"text_column": None, "feature_columns": ["income", "debt_ratio", "purpose", "age"]},
                        model={"backbone": str(tiny_bert), "kind": "gbm"}, show_progress=False)
    rows = frame.iloc[::7]
    values = model.predict(rows)
    assert isinstance(values, pd.Series) and values.index.equals(rows.index) and values.name == "prediction"
    assert np.corrcoef(values, rows["score"])[0, 1] > 0.8
    with pytest.raises(Exception, match="predict_proba is for classification"):
        model.predict_proba(rows)


def test_inputs_it_cannot_read_are_type_errors(tiny_bert: Path, tmp_path: Path, monkeypatch, capfd) -> None:
    monkeypatch.setenv("FINTUNE_HOME", str(tmp_path / "home"))
    # The smallest run that loads (1 epoch, 60 rows, no test split): the inputs are what is tested.
    model = fintune.fit(sentiment_frame(60), label_column="label", text_column="text", output_dir=tmp_path / "e",
                        model={"backbone": str(tiny_bert), "max_length": 32},
                        train={**TRAIN, "epochs": 1, "checkpoint_every": 0}, data={"split": {"test_size": 0.0}},
                        show_progress=False)
    # What a cell shows: what the model is, what it measured, where it lives; loaded again, the same.
    shown = repr(model)
    assert shown.startswith("FintuneModel: text model") and "validation" in shown and str(tmp_path / "e") in shown
    assert "labels" in shown and "<table>" in model._repr_html_()
    loaded = fintune.FintuneModel.load(tmp_path / "e")
    assert loaded.run_dir == tmp_path / "e" and "weighted_f1" in repr(loaded)
    # transformers' load report (classifier.weight MISSING) stays out of the notebook: fintune
    # reports its own new head.
    assert "MISSING" not in capfd.readouterr().err
    with pytest.raises(TypeError, match="not one string"):
        model.predict("acme beats")
    with pytest.raises(TypeError, match="must hold texts"):
        model.predict([1, 2, 3])
    with pytest.raises(TypeError, match="got dict"):
        model.predict({"text": ["acme beats"]})
    with pytest.raises(TypeError, match="give a path"):
        fintune.fit(42, output_dir=tmp_path / "bad")
    from fintune.errors import ConfigError

    with pytest.raises(ConfigError, match="model"):  # a section given as a plain value: the config says no
        fintune.fit(sentiment_frame(10), model="minilm")


def test_dir_lists_the_public_api_and_nothing_else() -> None:
    names = dir(fintune)
    for name in ("fit", "train", "evaluate", "predict", "FintuneModel", "load_config", "__version__", "DataError",
                 "ConfigError"):
        assert name in names
    assert "Any" not in names and "annotations" not in names
    assert fintune.__version__
    assert issubclass(fintune.DataError, ValueError) and issubclass(fintune.ConfigError, ValueError)


def test_an_error_about_a_frame_names_its_column_not_the_cache_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FINTUNE_HOME", str(tmp_path / "home"))
    with pytest.raises(ValueError) as caught:  # a notebook's `except ValueError` catches fintune's data errors
        fintune.fit(sentiment_frame(40), text_column="tweet", label_column="label", output_dir=tmp_path / "x")
    assert isinstance(caught.value, fintune.DataError)
    message = str(caught.value)
    assert "'tweet'" in message and "DataFrame" in message and "frames" not in message and ".parquet" not in message
