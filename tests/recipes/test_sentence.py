"""The sentence recipe: regression targets are standardized for training and mapped back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fintune import api
from fintune.predictors import FintuneModel
from tests.conftest import sentiment_frame, write_config


def test_a_target_near_minus_ten_trains(tiny_bert: Path, tmp_path: Path) -> None:
    frame = sentiment_frame(300, seed=5)
    # Log volatility sits near -10: a fresh head starting at 0 would spend training getting there.
    frame["label"] = frame["label"].map({"negative": -10.6, "neutral": -10.0, "positive": -9.4})
    train = tmp_path / "vol.csv"
    frame.to_csv(train, index=False)
    config = write_config(tmp_path / "r.yaml", tiny_bert, train, tmp_path / "run", task="regression",
                          train={"epochs": 6, "early_stopping": None},
                          data={"split": {"validation_size": 0.2, "test_size": 0.2}})
    run = api.train(config, show_progress=False)
    assert run.metrics["test"]["r2"] > 0.5, run.metrics["test"]
    meta = json.loads((run.model_dir / "fintune.json").read_text())
    assert abs(meta["target_scale"]["mean"] + 10.0) < 0.2 and 0.3 < meta["target_scale"]["std"] < 0.7
    # Predictions come back in the target's own units.
    model = FintuneModel.load(run.run_dir)
    values = model.predict(["acme surges today", "acme plunges today"])
    assert np.all((np.asarray(values) > -11.5) & (np.asarray(values) < -8.5))
