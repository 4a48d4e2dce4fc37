"""model.kind end to end on the tiny BERT: text, fusion, mlp and gbm train, save, reload, predict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fintune import api
from fintune.errors import DataError
from fintune.config import readers_of
from fintune.predictors import FintuneModel
from tests.conftest import credit_frame, price_frame, write_config

FEATURES = ["income", "debt_ratio", "purpose", "age"]

# kind -> (config sections, files the saved model must hold)
KINDS = {
    "text": ({"train": {"epochs": 2}}, ["model.safetensors", "tokenizer.json"]),
    "fusion": ({"train": {"epochs": 4, "head_lr": 3e-3}},
               ["model.safetensors", "fusion_head.safetensors", "features.json", "tokenizer.json"]),
    "mlp": ({"train": {"epochs": 15, "lr": 3e-3}}, ["fusion_head.safetensors", "features.json"]),
    "gbm": ({"model": {"gbm": {"n_estimators": 200, "min_child_samples": 5}}}, ["gbm.txt", "features.json"]),
    "linear": ({}, ["linear.json", "features.json"]),
}
# The ensemble trains in test_the_ensemble_weights_its_members_and_explains (once: it trains three members).
ENSEMBLE = ({"model": {"gbm": {"n_estimators": 200, "min_child_samples": 5},
                       "ensemble": {"members": ["gbm", "mlp", "linear"], "rounds": 20}},
             "train": {"epochs": 15, "lr": 3e-3}},
            ["members/gbm/gbm.txt", "members/linear/linear.json", "members/mlp/fusion_head.safetensors"])


@pytest.fixture(scope="module")
def credit_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("credit") / "credit.csv"
    credit_frame(400).to_csv(path, index=False)
    return path


def _config(tmp_path: Path, tiny_bert: Path, train_file: Path, kind: str, **sections) -> Path:
    base = ENSEMBLE[0] if kind == "ensemble" else KINDS[kind][0]
    sections = {**base, **sections}
    sections["train"] = {**base.get("train", {}), **sections.get("train", {})}
    # A head's width only where the kind has a head (a setting of another kind is an error).
    model = {"backbone": str(tiny_bert), "max_length": 48, "kind": kind,
             **({"head_hidden": 32} if kind in readers_of("head_hidden") else {}), **sections.pop("model", {})}
    data = {"train": str(train_file), "text_column": None, "feature_columns": FEATURES, "label_column": "label",
            "label_names": ["good", "bad"], **sections.pop("data", {})}
    train_cfg = {"epochs": 3, "batch_size": 32, "lr": 1e-3, "checkpoint_every": 0, "precision": "fp32",
                 "early_stopping": {"metric": "roc_auc", "patience": 20}, **sections.pop("train", {})}
    return write_config(tmp_path / f"{kind}.yaml", tiny_bert, train_file, tmp_path / kind, data=data, model=model,
                        train=train_cfg, **sections)


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_trains_saves_reloads_and_predicts(kind, tmp_path, tiny_bert, credit_csv):
    run = api.train(_config(tmp_path, tiny_bert, credit_csv, kind), show_progress=False)
    for name in KINDS[kind][1]:
        assert (run.model_dir / name).exists(), name
    meta = json.loads((run.model_dir / "fintune.json").read_text())
    assert meta["kind"] == kind
    test = run.metrics["test"]
    # The credit metrics, each in its range and consistent with the others.
    for name in ("roc_auc", "pr_auc", "ks", "brier"):
        assert 0.0 <= test[name] <= 1.0, (name, test[name])
    assert test["gini"] == pytest.approx(2 * test["roc_auc"] - 1, abs=1e-9)
    assert test["ks"] <= 1.0 and test["brier"] < 0.5  # better than a constant 0/1 guess
    if kind in ("fusion", "mlp", "gbm", "linear", "ensemble"):
        # Debt ratio and purpose decide the label: the features carry real signal.
        assert test["roc_auc"] > 0.8, test["roc_auc"]

    model = FintuneModel.load(run.run_dir)
    frame = pd.read_csv(credit_csv).iloc[:50]
    examples = model.examples_of(frame, "rows")
    out = model.outputs(examples)
    assert out.shape == (50, 2) and np.allclose(out.sum(axis=1), 1, atol=1e-5)
    written = api.predict(run.run_dir, credit_csv, tmp_path / "pred.csv", show_progress=False)
    pred = pd.read_csv(written)
    np.testing.assert_allclose(pred["prob_bad"].to_numpy()[:50], out[:, 1], atol=1e-5)
    again = api.evaluate(run.run_dir, credit_csv)
    assert again["n"] == 400


def test_fusion_reads_a_text_column_and_features_together(tmp_path, tiny_bert):
    frame = credit_frame(300, seed=3)
    frame["note"] = np.where(frame["purpose"] == "car", "car loan", "other loan")
    path = tmp_path / "with_text.csv"
    frame.to_csv(path, index=False)
    config = _config(tmp_path, tiny_bert, path, "fusion", data={"text_column": "note"})
    run = api.train(config, show_progress=False)
    model = FintuneModel.load(run.run_dir)
    assert model.examples_of(frame.iloc[:2], "x").texts == ["car loan" if p == "car" else "other loan"
                                                            for p in frame["purpose"][:2]]


def test_a_leaking_feature_stops_training_before_anything_is_written(tmp_path, tiny_bert):
    frame = credit_frame(300)
    frame["collections_flag"] = np.where(frame["label"] == "bad", "sent", "none")
    path = tmp_path / "leaky.csv"
    frame.to_csv(path, index=False)
    config = _config(tmp_path, tiny_bert, path, "gbm", data={"feature_columns": [*FEATURES, "collections_flag"]})
    with pytest.raises(DataError, match="'collections_flag' alone predicts the target"):
        api.train(config, show_progress=False)
    assert not (tmp_path / "gbm").exists()


def test_text_in_a_number_column_at_prediction_names_the_row(tmp_path, tiny_bert, credit_csv):
    run = api.train(_config(tmp_path, tiny_bert, credit_csv, "gbm"), show_progress=False)
    bad = pd.read_csv(credit_csv).iloc[:5].astype({"income": object})
    bad.loc[3, "income"] = "unknown"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match="'income' holds numbers, but this row holds 'unknown'") as err:
        api.predict(run.run_dir, tmp_path / "bad.csv", tmp_path / "out.csv", show_progress=False)
    assert err.value.row == 4
    assert not (tmp_path / "out.csv").exists()


def test_walk_forward_on_windows_scores_every_fold_out_of_time(tmp_path, tiny_bert):
    from fintune.workflows.walkforward import walk_forward

    path = tmp_path / "prices.csv"
    price_frame(400).to_csv(path, index=False)
    config = write_config(
        tmp_path / "wf.yaml", tiny_bert, path, tmp_path / "wf", task="regression",
        data={"train": str(path), "text_column": None, "feature_columns": ["ret", "log_volume"], "label_column": "log_volume",
              "date_column": "date", "windows": {"lags": 3, "rolling": [5]},
              "split": {"method": "time", "validation_size": 0.2}},
        model={"backbone": str(tiny_bert), "kind": "gbm", "gbm": {"n_estimators": 100, "min_child_samples": 5}})
    from fintune.console import console

    with console.capture() as printed:
        summary = walk_forward(config, folds=3, show_progress=False)
    table = printed.get().split("walk-forward: each fold")[-1]  # the summary table, after the folds' own output
    assert "mean" in table and "std" in table and "r2" in table and f"{summary['mean']['r2']:.4f}" in table
    assert [f["fold"] for f in summary["folds"]] == [1, 2, 3]
    assert summary["folds"][0]["train_rows"] < summary["folds"][2]["train_rows"]
    # log volume is persistent (AR 0.8): yesterday's value explains a good part of today's.
    assert summary["mean"]["r2"] > 0.3, summary
    assert (tmp_path / "wf" / "walk_forward.json").exists() and (tmp_path / "wf" / "walk_forward.png").exists()
    predictions = api.predict(tmp_path / "wf" / "fold_3", path, tmp_path / "pred.csv", show_progress=False)
    assert len(pd.read_csv(predictions)) == 400 - 5  # one prediction per complete window


@pytest.mark.parametrize("strategy, trainable_share", [
    ({"name": "full"}, (0.99, 1.0)),
    ({"name": "freeze", "trainable_layers": 0}, (0.0, 0.3)),  # the head (and pooler) only
    ({"name": "gradual"}, (0.99, 1.0)),
])
def test_fusion_trains_with_the_layer_strategies(strategy, trainable_share, tmp_path, tiny_bert, credit_csv):
    config = _config(tmp_path, tiny_bert, credit_csv, "fusion", strategy=strategy, train={"epochs": 1})
    run = api.train(config, show_progress=False)
    training = run.metrics["training"]
    share = training["trainable_params"] / training["total_params"]
    assert trainable_share[0] <= share <= trainable_share[1], share


def test_the_ensemble_weights_its_members_and_explains(tmp_path, tiny_bert, credit_csv) -> None:
    from fintune import trust

    run = api.train(_config(tmp_path, tiny_bert, credit_csv, "ensemble"), show_progress=False)
    for name in ENSEMBLE[1]:
        assert (run.model_dir / name).exists(), name
    assert run.metrics["test"]["roc_auc"] > 0.8  # debt ratio and purpose decide the label
    weights = run.metrics["ensemble_weights"]
    assert set(weights) == {"gbm", "mlp", "linear"} and abs(sum(weights.values()) - 1) < 1e-9
    # Each member is a run of its own, scored on the same test rows.
    for member in weights:
        assert (run.run_dir / "members" / member / "metrics.json").exists()
        assert run.metrics["members"][member]["test"]["n"] == run.metrics["test"]["n"]
    model = FintuneModel.load(run.run_dir)
    frame = pd.read_csv(credit_csv).iloc[:20]
    examples = model.examples_of(frame, "rows")
    mixed = sum(w * model.members[m].outputs(examples) for m, w in weights.items())
    from fintune.scoring.calibration import apply_temperature
    expected = apply_temperature(mixed, model.temperature) if model.temperature else mixed
    assert np.allclose(model.outputs(examples), expected, atol=1e-5)
    explanation = trust.explain_rows(run.run_dir, [0])[0]
    assert explanation.top(3)


def test_greedy_selection_follows_the_tracked_metric() -> None:
    from fintune.recipes.ensemble import greedy_selection

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    ranks_well = np.clip(0.9 * y + rng.normal(0.05, 0.05, 400), 0.01, 0.99)  # ranks perfectly-ish, overconfident
    calibrated = np.clip(0.5 + (y - 0.5) * 0.3 + rng.normal(0, 0.2, 400), 0.01, 0.99)
    outputs = [np.stack([1 - p, p], axis=1) for p in (ranks_well, calibrated)]
    by_auc = greedy_selection(outputs, y, "classification", 20, ("roc_auc", "max"), ["0", "1"])
    assert by_auc[0] > 0.5 and abs(sum(by_auc) - 1) < 1e-9
    by_loss = greedy_selection(outputs, y, "classification", 20)
    assert len(by_loss) == 2 and abs(sum(by_loss) - 1) < 1e-9



def test_bagged_gbm_averages_its_boosters_and_reloads(tmp_path, tiny_bert, credit_csv):
    from fintune.config import GBMConfig
    from fintune.models.gbm import GBMModel

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    y = (x[:, 0] + 0.5 * rng.normal(size=300) > 0).astype(int)
    cfg = GBMConfig(n_estimators=60, min_child_samples=5, bags=3, early_stopping_rounds=60)
    gbm = GBMModel.fit(cfg, "classification", 2, x[:200], y[:200], x[200:], y[200:], seed=7)
    each = [b.predict(x[200:], num_iteration=b.best_iteration or None) for b in gbm.boosters]
    assert len({tuple(np.round(e, 6)) for e in each}) == 3  # different row and column samples, different trees
    assert np.allclose(gbm.outputs(x[200:])[:, 1], np.mean(each, axis=0), atol=1e-6)
    gbm.save(tmp_path / "bagged")
    assert sorted(p.name for p in (tmp_path / "bagged").iterdir()) == ["gbm.txt", "gbm_1.txt", "gbm_2.txt"]
    assert np.allclose(GBMModel.load(tmp_path / "bagged", "classification", 2).outputs(x), gbm.outputs(x), atol=1e-6)
    # In a run: every bag is saved beside the features, and the trees of all bags are counted.
    run = api.train(_config(tmp_path, tiny_bert, credit_csv, "gbm",
                            model={"gbm": {"n_estimators": 50, "min_child_samples": 5, "bags": 2}}), show_progress=False)
    assert (run.model_dir / "gbm_1.txt").exists() and not (run.model_dir / "gbm_2.txt").exists()
    saved = GBMModel.load(run.model_dir, "classification", 2)
    assert run.metrics["training"]["trainable_params"] == sum(b.num_trees() for b in saved.boosters)
