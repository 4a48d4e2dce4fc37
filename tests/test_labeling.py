"""fintune label: labeling functions vote, the label model combines, a file fintune trains on."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from fintune import api
from fintune.errors import ConfigError
from tests.conftest import NEGATIVE, POSITIVE, sentiment_frame, write_config


def _config(tmp: Path, method: str = "label_model", **extra: object) -> Path:
    sentiment_frame(400, seed=9).to_csv(tmp / "texts.csv", index=False)
    raw = {"data": {"path": "texts.csv", "text_column": "text", "gold_column": "label"},
           "labels": ["negative", "neutral", "positive"],
           "functions": [
               {"kind": "keywords", "name": "good_words", "label": "positive", "keywords": POSITIVE[:5]},
               {"kind": "regex", "name": "bad_words", "label": "negative", "pattern": "|".join(NEGATIVE[:5])},
               {"kind": "keywords", "name": "routine", "label": "neutral", "keywords": ["announces", "schedules",
                                                                                         "holds", "files"]},
               {"kind": "lexicon", "name": "loughran_mcdonald", "positive": "positive", "negative": "negative"}],
           "combine": {"method": method}, "output": "weak.csv", **extra}
    path = tmp / "label.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


@pytest.mark.parametrize("method", ["label_model", "majority"])
def test_functions_vote_and_the_output_trains(method: str, tmp_path: Path, tiny_bert: Path) -> None:
    result = api.label(_config(tmp_path, method))
    report = {f["name"]: f for f in result.functions}
    assert report["good_words"]["accuracy"] == 1.0 and 0 < report["good_words"]["coverage"] < 1
    assert result.summary["accuracy_on_labeled"] > 0.9
    out = pd.read_csv(tmp_path / "weak.csv")
    assert len(out) == result.summary["labeled"] < 400  # rows without a vote are left out
    assert out["confidence"].between(0, 1).all() and set(out.columns) >= {"text", "label", "confidence"}
    assert (tmp_path / "weak.csv.report.json").exists()
    if method == "label_model":
        run = api.train(write_config(tmp_path / "run.yaml", tiny_bert, tmp_path / "weak.csv", tmp_path / "run",
                                     data={"weight_column": "confidence"}), show_progress=False)
        assert run.metrics["test"]["accuracy"] > 0.8
        # The trained run as a labeling function of its own, above a confidence.
        raw = yaml.safe_load((tmp_path / "label.yaml").read_text())
        raw["functions"] = [{"kind": "model", "name": "weak_run", "run": "run", "min_confidence": 0.5}]
        raw["output"] = "by_model.jsonl"
        (tmp_path / "model.yaml").write_text(yaml.safe_dump(raw))
        by_model = api.label(tmp_path / "model.yaml")
        assert by_model.functions[0]["accuracy"] > 0.8 and (tmp_path / "by_model.jsonl").exists()


def test_a_function_voting_an_unknown_label_is_refused(tmp_path: Path) -> None:
    path = _config(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["functions"][0]["label"] = "bullish"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="good_words votes bullish, which is not in labels"):
        api.label(path)
