"""strategy setfit: SetFit's contrastive step (the setfit library) tunes the probe's encoder
before its head trains; the run loads, predicts and serves like any probe."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fintune import api
from fintune.predictors import FintuneModel
from tests.conftest import sentiment_frame, write_config


def test_setfit_beats_the_untuned_probe_with_few_labels(tiny_bert: Path, tmp_path: Path) -> None:
    frame = sentiment_frame(400, seed=5)
    few = pd.concat([g.head(8) for _, g in frame.iloc[:200].groupby("label")])  # 8 per class
    few.to_csv(tmp_path / "few.csv", index=False)
    frame.iloc[200:260].to_csv(tmp_path / "valid.csv", index=False)
    frame.iloc[260:].to_csv(tmp_path / "test.csv", index=False)
    data = {"train": str(tmp_path / "few.csv"), "validation": str(tmp_path / "valid.csv"),
            "test": str(tmp_path / "test.csv"), "text_column": "text", "label_column": "label"}
    head = {"epochs": 100, "lr": 0.05, "batch_size": 32, "early_stopping": None}
    scores = {}
    for name, strategy in (("probe", {"name": "full"}),
                           ("setfit", {"name": "setfit", "num_iterations": 20, "body_epochs": 2, "body_lr": 1e-3})):
        config = write_config(tmp_path / f"{name}.yaml", tiny_bert, tmp_path / "few.csv", tmp_path / name,
                              data=data, model={"backbone": str(tiny_bert), "max_length": 32, "kind": "probe"},
                              strategy=strategy, train=head)
        scores[name] = api.train(config, show_progress=False).metrics["test"]["accuracy"]
    assert scores["setfit"] >= scores["probe"] + 0.1, scores
    model = FintuneModel.load(tmp_path / "setfit")
    assert model.meta.strategy == "setfit"
    test = pd.read_csv(tmp_path / "test.csv")
    accuracy = (model.predict(test) == test["label"]).mean()
    assert abs(accuracy - scores["setfit"]) < 1e-9  # the saved model is the one evaluated
    exported = FintuneModel.load(api.export(tmp_path / "setfit", output=tmp_path / "exported"))
    assert exported.predict(test).tolist() == model.predict(test).tolist()
