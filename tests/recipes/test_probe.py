"""model.kind probe: vectors computed once, the head trained by the loop, DP-SGD on the head."""

from __future__ import annotations

from pathlib import Path

from fintune import api
from fintune.predictors import FintuneModel
from tests.conftest import sentiment_frame, write_config


def test_a_probe_learns_and_trains_privately(tiny_bert: Path, tmp_path: Path) -> None:
    train = tmp_path / "train.csv"
    sentiment_frame(600, seed=3).to_csv(train, index=False)
    plain = api.train(write_config(tmp_path / "p.yaml", tiny_bert, train, tmp_path / "plain", model={"kind": "probe"},
                                   train={"epochs": 30, "lr": 0.05, "batch_size": 64, "early_stopping": None}),
                      show_progress=False)
    assert plain.metrics["training"]["trainable_params"] == 64 * 3 + 3  # the head alone
    assert plain.metrics["test"]["accuracy"] > 0.6
    model = FintuneModel.load(plain.run_dir)
    assert model.predict(["acme surges"])[0] in ("positive", "negative", "neutral")
    private = api.train(write_config(tmp_path / "dp.yaml", tiny_bert, train, tmp_path / "dp", model={"kind": "probe"},
                                     train={"epochs": 30, "lr": 0.05, "batch_size": 64, "early_stopping": None,
                                            "privacy": {"dp": {"epsilon": 8.0}}}),
                        show_progress=False)
    spent = private.metrics["training"]["privacy"]["epsilon_spent"]
    assert 0 < spent <= 8.0 + 1e-6
    assert private.metrics["test"]["accuracy"] > 0.45  # noisy, but above a third (3 balanced classes)


def test_sgd_with_momentum_is_an_optimizer_choice(tiny_bert: Path, tmp_path: Path) -> None:
    train = tmp_path / "train.csv"
    sentiment_frame(300, seed=4).to_csv(train, index=False)
    run = api.train(write_config(tmp_path / "s.yaml", tiny_bert, train, tmp_path / "sgd", model={"kind": "probe"},
                                 train={"epochs": 20, "lr": 0.5, "batch_size": 64, "optimizer": "sgd",
                                        "early_stopping": None}), show_progress=False)
    history = run.metrics["training"]
    assert history["global_step"] > 0 and run.metrics["test"]["accuracy"] > 0.5
