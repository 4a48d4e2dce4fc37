"""Text pairs: the sentiment toward a named target (FiQA-2018 task 1 style)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fintune import api
from fintune.config import validate_config
from fintune.data import prepare_data
from fintune.errors import ConfigError
from fintune.predictors import FintuneModel
from tests.conftest import COMPANIES, LABELS, sentence


def target_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """Each text appears twice, with a target scored +0.8 and one scored -0.8: the text alone
    predicts nothing (R² 0 at best); the score follows from the target read as the pair."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        text = sentence(rng.choice(list(LABELS)), rng)
        good, bad = rng.choice(COMPANIES[:4]), rng.choice(COMPANIES[4:])
        rows += [{"text": text, "target": good, "score": 0.8}, {"text": text, "target": bad, "score": -0.8}]
    return pd.DataFrame(rows)


@pytest.fixture()
def pairs_csv(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.csv"
    target_frame(150).to_csv(path, index=False)
    return path


def test_one_text_with_two_targets_is_two_examples(pairs_csv: Path) -> None:
    cfg = validate_config({"data": {"train": str(pairs_csv), "text_column": "text", "pair_column": "target",
                                    "label_column": "score"}, "task": "regression"})
    data = prepare_data(cfg.data, cfg.task, seed=1)
    assert data.report["conflicts"]["count"] == 0  # not a conflict: another target
    assert data.train.pairs is not None and len(data.train.pairs) == len(data.train)
    assert set(data.train.pairs) <= set(COMPANIES)


def test_pair_model_scores_each_target(make_config, pairs_csv: Path, tmp_path: Path) -> None:
    config = make_config("pair.yaml", pairs_csv, task="regression",
                         data={"text_column": "text", "pair_column": "target", "label_column": "score"},
                         train={"epochs": 8, "lr": 1e-3})
    result = api.train(config, show_progress=False)
    assert result.metrics["test"]["r2"] > 0.8
    model = FintuneModel.load(result.run_dir)
    held = target_frame(20, seed=9)
    scores = model.outputs(model.examples_of(held, "held"))
    good, bad = scores[held["score"] > 0], scores[held["score"] < 0]
    assert np.mean(good) > 0.3 and np.mean(bad) < -0.3
    # predict appends the score to every row, reading the target column of the input.
    path = tmp_path / "held.csv"
    held.to_csv(path, index=False)
    out = pd.read_csv(api.predict(result.run_dir, path, tmp_path / "out.csv", show_progress=False))
    assert np.allclose(out["prediction"], scores, atol=1e-5)
    no_target = tmp_path / "no_target.csv"
    held.drop(columns="target").to_csv(no_target, index=False)
    with pytest.raises(Exception, match="pair column 'target'"):
        api.predict(result.run_dir, no_target, tmp_path / "o2.csv", show_progress=False)
    # The server reads the target from each row, through its micro-batches, as predict does.
    from fastapi.testclient import TestClient

    from fintune.config import ServeConfig
    from fintune.deploy.server import create_app

    with TestClient(create_app(model, ServeConfig(), log_path=tmp_path / "log.sqlite")) as client:
        reply = client.post("/v1/predict", json={"rows": held[["text", "target"]].head(6).to_dict("records")})
        assert reply.status_code == 200, reply.text
        values = [p["value"] for p in reply.json()["predictions"]]
        assert np.allclose(values, scores[:6], atol=1e-4)
        missing = client.post("/v1/predict", json={"texts": ["acme beats"]})
        assert missing.status_code == 422 and "target" in missing.text


@pytest.mark.parametrize(("raw", "message"), [
    ({"task": "regression", "data": {"train": "x.csv", "feature_columns": ["a"], "pair_column": "t"}},
     "data.pair_column is read with data.text_column"),
    ({"task": "regression", "model": {"kind": "fusion"},
      "data": {"train": "x.csv", "text_column": "s", "feature_columns": ["a"], "pair_column": "t"}},
     "data.pair_column .* model.kind 'text'"),
])
def test_pair_config_errors(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate_config(raw)


def test_text_alone_is_refused_by_a_pair_model(make_config, tmp_path: Path) -> None:
    from fintune.workflows.distill import distill
    from fintune.errors import DataError, FintuneError
    from fintune.evaluation.explain import explain
    from fintune.evaluation.robustness import robustness_suite

    frame = target_frame(60)
    frame["label"] = np.where(frame["score"] > 0, "up", "down")
    path = tmp_path / "labels.csv"
    frame.to_csv(path, index=False)
    config = make_config("pair_cls.yaml", path,
                         data={"text_column": "text", "pair_column": "target", "label_column": "label"},
                         train={"epochs": 1, "num_threads": 1})
    run = api.train(config, show_progress=False).run_dir
    model = FintuneModel.load(run)
    with pytest.raises(DataError, match="pair column 'target'"):
        model.outputs(["acme beats"])
    held = model.examples_of(target_frame(5, seed=3), "held")
    with pytest.raises(FintuneError, match="text-pair models"):
        explain(model, held)
    held.labels = np.zeros(len(held), dtype=np.int64)
    report = robustness_suite(model, held)  # perturbed copies keep their targets
    assert report["perturbations"]
    with pytest.raises(FintuneError, match="text pairs"):
        distill(run, "minilm")
