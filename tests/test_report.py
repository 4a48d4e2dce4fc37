"""The model-risk report never approves a broken model: every training and evaluation warning
at the top, a constant predictor's robustness table flagged, each kind described as it is, the
challengers' leaderboard when there is one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fintune import api
from fintune.cli import app
from fintune.evaluation.robustness import robustness_warnings
from fintune.report import write_report
from fintune.rundir import LEADERBOARD
from tests.conftest import credit_frame, write_config


@pytest.fixture(scope="module")
def constant_run(tmp_path_factory, tiny_bert: Path) -> Path:
    """A LightGBM run that cannot split (every leaf needs more rows than there are): it answers
    the majority class for every row, as a broken model does."""
    folder = tmp_path_factory.mktemp("constant")
    credit_frame(400, seed=1).to_csv(folder / "credit.csv", index=False)
    config = write_config(
        folder / "c.yaml", tiny_bert, folder / "credit.csv", folder / "run",
        data={"text_column": None, "feature_columns": ["income", "debt_ratio", "purpose", "age"],
              "label_names": ["good", "bad"], "split": {"validation_size": 0.25, "test_size": 0.25}},
        model={"backbone": str(tiny_bert), "kind": "gbm",
               "gbm": {"n_estimators": 5, "min_child_samples": 10_000, "early_stopping_rounds": 2}})
    return api.train(config, show_progress=False).run_dir


def test_a_constant_model_is_flagged_everywhere(constant_run: Path, tmp_path: Path) -> None:
    metrics = json.loads((constant_run / "metrics.json").read_text())
    predicted = [sum(col) for col in zip(*metrics["test"]["confusion_matrix"]["matrix"])]
    assert sum(1 for c in predicted if c) == 1, "the fixture must predict one class"

    # evaluate --data warns, and keeps the warning for the report.
    credit_frame(120, seed=9).to_csv(tmp_path / "new.csv", index=False)
    out = CliRunner().invoke(app, ["evaluate", str(constant_run), "--data", str(tmp_path / "new.csv")])
    assert out.exit_code == 0, out.output
    assert "warning" in out.output and "every new prediction is 'good'" in out.output
    page = write_report(constant_run).read_text(encoding="utf-8")
    top = page[page.index("<h2>Warnings</h2>"):page.index("<h2>Model</h2>")]
    assert "warning (training): every test prediction is" in top
    assert "warning (evaluate new): every new prediction is" in top
    assert "no better than always answering" in top
    assert "robustness: every prediction on this split is one class" in top
    robustness = page[page.index("<h2>Robustness</h2>"):]
    assert "constant model never flips" in robustness


def test_a_should_change_perturbation_that_flips_nothing_is_flagged() -> None:
    rows = {"negation": {"n": 50, "should_change": True, "flip_rate": 0.0},
            "typos": {"n": 50, "should_change": False, "flip_rate": 0.0}}
    lines = robustness_warnings(np.array([0, 1, 1]), rows)
    assert len(lines) == 1 and "'negation' should change predictions and flipped 0.0% of 50 rows" in lines[0]
    assert robustness_warnings(np.array([1, 1, 1]), {})[0].startswith("every prediction on this split is one class")


def test_the_card_describes_a_tree_model_as_one(constant_run: Path) -> None:
    from huggingface_hub import ModelCard

    card = ModelCard.load(constant_run / "model" / "README.md")
    assert card.data.pipeline_tag == "tabular-classification" and card.data.library_name == "lightgbm"
    assert card.data.base_model is None  # no pretrained backbone went into it
    assert "LightGBM gradient-boosted tree model" in card.content
    assert "serialized to text" not in card.content and "strategy" not in card.content.split("## Data")[0]


def test_the_quickstart_report_has_its_challengers_fairness_and_an_ensemble_card(tmp_path: Path) -> None:
    from huggingface_hub import ModelCard

    from fintune.workflows.quickstart import run_quickstart

    out = run_quickstart(str(tmp_path / "qs"), epochs=5, show_progress=False)
    run = Path(out["run_dir"])
    assert (run / LEADERBOARD).exists()
    page = (run / "report.html").read_text(encoding="utf-8")
    challengers = page[page.index("<h2>Challengers</h2>"):page.index("<h2>Calibration</h2>")]
    assert "logistic regression" in challengers and "LightGBM" in challengers and "majority class" in challengers
    fairness = page[page.index("<h2>Fairness</h2>"):page.index("<h2>Robustness</h2>")]
    assert "foreign_worker" in fairness and "personal_status_and_sex" in fairness and "no group columns" not in fairness
    card = ModelCard.load(run / "model" / "README.md")
    assert "a weighted ensemble of" in card.content and "LightGBM" in card.content
    assert "serialized to text" not in card.content and card.data.pipeline_tag == "tabular-classification"
