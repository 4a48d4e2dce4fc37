"""Label errors (cleanlab on out-of-fold probabilities) and row weights in the training loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fintune import api
from fintune.api import load_run_config
from fintune.config import validate_config
from fintune.data import prepare_data
from fintune.errors import DataError
from fintune.training.loop import Supervised
from tests.conftest import sentiment_frame, write_config


def _noisy(n: int, tmp: Path) -> tuple[Path, set[int]]:
    """Sentiment rows with 10% of the labels moved to another class; the file rows flipped."""
    frame = sentiment_frame(n, seed=11)
    rng = np.random.default_rng(0)
    flipped = rng.choice(n, size=n // 10, replace=False)
    names = sorted(frame["label"].unique())
    for i in flipped:
        frame.loc[i, "label"] = names[(names.index(frame.loc[i, "label"]) + 1) % len(names)]
    path = tmp / "noisy.csv"
    frame.to_csv(path, index=False)
    return path, {int(i) + 1 for i in flipped}  # rows are numbered from 1


def test_label_issues_find_flipped_rows_and_training_can_drop_them(tiny_bert: Path, tmp_path: Path) -> None:
    path, flipped = _noisy(600, tmp_path)
    config = write_config(tmp_path / "run.yaml", tiny_bert, path, tmp_path / "run",
                          data={"split": {"test_size": 0.0, "validation_size": 0.1}})
    api.data_check(config, label_issues=True, output=tmp_path / "check.json")
    table = pd.read_csv(tmp_path / "label_issues.csv")
    assert list(table.columns) == ["row", "text", "given_label", "suggested_label", "label_quality"]
    found = set(table["row"])
    cfg = load_run_config(config)
    in_train = flipped & set(prepare_data(cfg.data, cfg.task, cfg.seed).train.rows.tolist())
    precision = len(found & flipped) / len(found)
    recall = len(found & in_train) / len(in_train)
    assert precision >= 0.8 and recall >= 0.6, (precision, recall)
    cfg = load_run_config(config, ["data.clean.drop_label_issues=true"])
    data = prepare_data(cfg.data, cfg.task, cfg.seed)
    assert data.report["label_issues"]["dropped"] == len(found)
    assert not set(data.train.rows.tolist()) & found


def test_row_weights_scale_each_rows_loss() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    labels = np.array([0, 0, 1])
    weighted = Supervised(labels, "classification", row_weights=np.array([1.0, 0.0, 1.0], dtype=np.float32))
    plain = Supervised(labels[[0, 2]], "classification")
    torch.testing.assert_close(weighted(logits, np.arange(3)), plain(logits[[0, 2]], np.arange(2)))


def test_a_negative_weight_names_the_row(tmp_path: Path) -> None:
    frame = sentiment_frame(40).assign(confidence=1.0)
    frame.loc[5, "confidence"] = -0.5
    frame.to_csv(tmp_path / "w.csv", index=False)
    cfg = validate_config({"data": {"train": str(tmp_path / "w.csv"), "text_column": "text",
                                    "label_column": "label", "weight_column": "confidence"}})
    with pytest.raises(DataError, match="row 6.*row weight -0.5 is not a number >= 0"):
        prepare_data(cfg.data, cfg.task, cfg.seed)


def test_row_weights_and_focal_loss_are_refused_together() -> None:
    from fintune.errors import ConfigError

    with pytest.raises(ConfigError, match="focal does not take row weights"):
        validate_config({"data": {"train": "x.csv", "text_column": "text", "weight_column": "confidence"},
                         "train": {"loss": "focal"}})
