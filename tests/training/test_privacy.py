"""DP-SGD: the strategies it supports train within budget; the others are refused."""

from __future__ import annotations

import json

import pytest

from fintune import api
from fintune.config import DPConfig
from fintune.errors import ConfigError
from fintune.training.privacy import DPSGD

DP = {"epsilon": 8.0, "delta": 1e-5, "max_grad_norm": 1.0}


@pytest.mark.parametrize("strategy", [
    {"name": "full"},
    {"name": "freeze", "trainable_layers": 1},
    {"name": "lora", "r": 4, "alpha": 8},
])
def test_dp_training_spends_at_most_its_budget(make_config, strategy: dict) -> None:
    config = make_config(f"dp_{strategy['name']}.yaml", strategy=strategy,
                         train={"epochs": 2, "batch_size": 32, "lr": 3e-3, "checkpoint_every": 0,
                                "precision": "fp32", "early_stopping": None, "privacy": {"dp": DP}})
    result = api.train(config, show_progress=False)
    privacy = json.loads((result.run_dir / "metrics.json").read_text())["training"]["privacy"]
    assert privacy["dp"] and 0 < privacy["epsilon_spent"] <= DP["epsilon"] + 1e-6
    assert privacy["steps"] == privacy["planned_steps"] > 0 and privacy["noise_multiplier"] > 0
    card = (result.run_dir / "model" / "README.md").read_text()
    assert "differential privacy" in card and f"{privacy['epsilon_spent']:.2f}" in card
    # The saved model is a plain one: no Opacus hooks or per-example gradients left behind.
    from fintune.predictors import FintuneModel

    assert FintuneModel.load(result.run_dir).predict(["acme beats"])[0] in ("positive", "negative", "neutral")


@pytest.mark.parametrize(("strategy", "extra", "message"), [
    ({"name": "gradual"}, {}, "DP-SGD"),
    ({"name": "prompt"}, {}, "DP-SGD"),
    ({"name": "full"}, {"oversample": True}, "oversample"),
])
def test_unsupported_dp_combinations_are_refused(make_config, strategy: dict, extra: dict, message: str) -> None:
    config = make_config("dp_bad.yaml", strategy=strategy, train={"privacy": {"dp": DP}, **extra})
    with pytest.raises(ConfigError, match=message):
        api.load_run_config(config)


def test_noise_grows_as_the_budget_shrinks_and_sampling_is_reproducible() -> None:
    sigmas = [DPSGD(DPConfig(epsilon=e), 1000, 50, 3, None).noise_multiplier for e in (1, 3, 8)]
    assert sigmas[0] > sigmas[1] > sigmas[2] > 0
    dp = DPSGD(DPConfig(epsilon=3), 1000, 50, 3, None)
    first, again = dp.batches(seed=1, epoch=0), dp.batches(seed=1, epoch=0)
    assert len(first) == 20 and all((a == b).all() for a, b in zip(first, again, strict=True))
    assert 30 < sum(map(len, first)) / len(first) < 70  # Poisson sampling around q * n = 50


def test_membership_audit_sees_an_overfit_model(make_config, tmp_path) -> None:
    """Trained long on few rows, the model's loss gives its training rows away; the CLI
    reports the audit and writes it beside the run."""
    from typer.testing import CliRunner

    from fintune.cli import app
    from fintune.evaluation.privacy_audit import membership_inference
    from fintune.predictors import FintuneModel
    from tests.conftest import sentiment_frame

    path = tmp_path / "small.csv"
    frame = sentiment_frame(160, seed=3)
    frame["label"] = [["positive", "negative", "neutral"][i % 3] for i in range(len(frame))]  # noise: memorize
    frame.to_csv(path, index=False)
    config = make_config("overfit.yaml", train_file=path, data={"split": {"validation_size": 0.3, "test_size": 0.0}},
                         train={"epochs": 30, "batch_size": 16, "lr": 3e-3, "checkpoint_every": 0,
                                "precision": "fp32", "early_stopping": None})
    run = api.train(config, show_progress=False).run_dir
    result = CliRunner().invoke(app, ["evaluate", str(run), "--privacy-audit"])
    assert result.exit_code == 0, result.output
    audit = json.loads((run / "privacy_audit.json").read_text())
    assert audit["auc"] > 0.8 and audit["advantage"] > 0.4 and audit["dp"] is None
    # Two halves of the held-out rows, both unseen: the attack has nothing to go on.
    model = FintuneModel.load(run)
    held = api.load_split(run, "validation", model)[0]
    half = len(held) // 2
    unseen = membership_inference(model, held.subset(0, half), held.subset(half, 2 * half))
    assert abs(unseen["auc"] - 0.5) < 0.2
    missing = CliRunner().invoke(app, ["evaluate", str(run)])
    assert missing.exit_code == 2 and "--privacy-audit" in missing.output
