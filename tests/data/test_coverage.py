"""Tokenizer coverage: text a backbone reads as unknown tokens is measured and warned about,
in the data check and in training, instead of being trained on silently."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from transformers import AutoTokenizer

from fintune import api
from fintune.data.coverage import WARN_SHARE, coverage_warning, measure, script_of
from tests.conftest import sentiment_frame, write_config

CHINESE = ["公司净利润同比增长30%，超出市场预期", "央行宣布降准0.5个百分点", "股价大跌，投资者恐慌", "业绩亏损，前景堪忧"]


def _chinese_csv(path: Path, n: int = 80) -> Path:
    rows = [{"text": CHINESE[i % 4] + f" {i}", "label": ["positive", "neutral", "negative", "negative"][i % 4]}
            for i in range(n)]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_an_english_vocabulary_reads_chinese_as_unknown(tiny_bert: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    chinese = measure(tokenizer, CHINESE)
    assert chinese["unknown_token_share"] > 0.5 and chinese["scripts"][0] == "CJK"
    english = measure(tokenizer, list(sentiment_frame(20)["text"]))
    assert english["unknown_token_share"] <= WARN_SHARE
    line = coverage_warning(chinese, "tiny", "text")
    assert line is not None and "unknown to backbone tiny" in line and "CJK" in line and "qwen0.5b" in line
    assert coverage_warning(english, "tiny", "text") is None
    assert script_of("公") == "CJK" and script_of("a") == "LATIN" and script_of("ж") == "CYRILLIC"


def test_the_data_check_and_training_say_so(tmp_path: Path, tiny_bert: Path, capsys) -> None:
    config = write_config(tmp_path / "zh.yaml", tiny_bert, _chinese_csv(tmp_path / "zh.csv"), tmp_path / "runs" / "zh",
                          train={"epochs": 1})
    report = api.data_check(config, output=tmp_path / "check.json")
    assert report["coverage"]["train"]["unknown_token_share"] > WARN_SHARE
    assert json.loads((tmp_path / "check.json").read_text())["coverage"]["backbone"] == str(tiny_bert)
    assert "are unknown to backbone" in capsys.readouterr().err.replace("\n", " ")
    result = api.train(config, show_progress=False)
    warnings = result.metrics["data_warnings"]
    assert len(warnings) == 1 and "unknown to backbone" in warnings[0]
    assert "unknown to backbone" in capsys.readouterr().err.replace("\n", " ")


def test_bow_reads_chinese_characters_and_reloads(tmp_path: Path, tiny_bert: Path) -> None:
    from fintune.predictors import FintuneModel

    config = write_config(tmp_path / "bow.yaml", tiny_bert, _chinese_csv(tmp_path / "zh.csv"),
                          tmp_path / "runs" / "bow", model={"kind": "bow", "bow": {"analyzer": "char", "ngram_max": 3}})
    result = api.train(config, show_progress=False)
    assert result.metrics["validation"]["accuracy"] >= 0.75  # the four headlines differ by their characters
    model = FintuneModel.load(result.run_dir)
    assert model.model.counts.analyzer == "char" and "利润" in model.model.vocabulary
    assert model.predict(["公司净利润同比增长"]) == ["positive"]
