"""prepare_data, load_examples, frame_to_texts and the report: end to end from files in tmp_path."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from fintune.data import (
    Examples, PreparedData, frame_to_texts, load_examples, prepare_data, print_report,
)
from fintune.errors import DataError

LABELS = ["negative", "neutral", "positive"]


def _news(n: int = 60, labels=LABELS) -> pd.DataFrame:
    return pd.DataFrame({"text": [f"headline number {i}" for i in range(n)],
                         "label": [labels[i % len(labels)] for i in range(n)]})


def _error(fn, *args, **kwargs) -> str:
    with pytest.raises(DataError) as err:
        fn(*args, **kwargs)
    return str(err.value)


# ---------------------------------------------------------------- the happy path


def test_prepare_csv_classification(write_csv, make_cfg):
    cfg = make_cfg(write_csv("train.csv", _news(100)))
    data = prepare_data(cfg, "classification", seed=0)
    assert isinstance(data, PreparedData) and isinstance(data.train, Examples)
    assert data.label_names == LABELS  # sorted unique train labels
    assert (len(data.train), len(data.validation), len(data.test)) == (80, 10, 10)
    assert data.train.labels.dtype == np.int64 and data.train.dates is None
    assert data.train.texts[0].startswith("headline number")
    # texts and labels stay paired through the shuffle
    for text, label in zip(data.validation.texts, data.validation.labels):
        assert LABELS[label] == LABELS[int(text.split()[-1]) % 3]
    assert data.validation.source.endswith("train.csv [carved validation]")
    report = data.report
    json.dumps(report)  # JSON-serializable
    assert report["rows"] == {"train": 80, "validation": 10, "test": 10}
    assert report["raw_rows"] == {"train": 100}
    assert sum(report["class_balance"]["validation"].values()) == 10
    assert report["text_length"]["train"]["unit"] == "words"
    assert report["text_length"]["train"]["max"] == 3
    assert report["split"] == {"method": "stratified", "note": None}


def test_text_length_uses_count_tokens_when_given(write_csv, make_cfg):
    cfg = make_cfg(write_csv("train.csv", _news(30)))
    data = prepare_data(cfg, "classification", 0, count_tokens=lambda texts: [7] * len(texts))
    assert data.report["text_length"]["test"] == {"unit": "tokens", "mean": 7.0, "p50": 7.0,
                                                  "p95": 7.0, "max": 7}


def test_cleaning_is_applied_to_training_texts(write_csv, make_cfg):
    frame = pd.DataFrame({"text": ["  $AAPL   beats https://x.com ", "ｆｌａｔ day", "down"] * 4,
                          "label": ["positive", "neutral", "negative"] * 4})
    frame["text"] = frame["text"] + pd.Series(range(12)).astype(str)
    cfg = make_cfg(write_csv("train.csv", frame),
                   clean={"replace_urls": True, "replace_tickers": True}, split={"test_size": 0})
    data = prepare_data(cfg, "classification", 0)
    texts = set(data.train.texts + data.validation.texts)
    assert "TICKER beats URL 0" in texts and "flat day1" in texts


def test_jsonl_and_parquet_sources(write_jsonl, make_cfg, tmp_path: Path):
    records = _news(30).to_dict("records")
    jsonl = prepare_data(make_cfg(write_jsonl("train.jsonl", records)), "classification", 0)
    _news(30).to_parquet(tmp_path / "train.parquet")
    parquet = prepare_data(make_cfg(str(tmp_path / "train.parquet")), "classification", 0)
    assert jsonl.train.texts == parquet.train.texts
    assert jsonl.label_names == parquet.label_names == LABELS


def test_given_validation_and_test_files_are_used_as_is(write_csv, make_cfg):
    cfg = make_cfg(write_csv("train.csv", _news(30)),
                   validation=write_csv("val.csv", _news(36).iloc[30:33]),
                   test=write_csv("test.csv", _news(36).iloc[33:36]))
    data = prepare_data(cfg, "classification", 0)
    assert len(data.train) == 30 and data.train.source.endswith("train.csv")
    assert data.validation.texts == [f"headline number {i}" for i in (30, 31, 32)]
    assert data.test.source.endswith("test.csv")
    assert data.report["split"]["method"] == "files"
    assert data.report["raw_rows"] == {"train": 30, "validation": 3, "test": 3}


def test_only_the_missing_test_split_is_carved(write_csv, make_cfg):
    cfg = make_cfg(write_csv("train.csv", _news(30)),
                   validation=write_csv("val.csv", _news(33).iloc[30:]))
    data = prepare_data(cfg, "classification", 0)
    assert len(data.validation) == 3 and len(data.test) == 3 and len(data.train) == 27
    assert data.test.source.endswith("[carved test]")


def test_no_test_split_when_test_size_is_zero(write_csv, make_cfg):
    cfg = make_cfg(write_csv("train.csv", _news(30)), split={"test_size": 0})
    data = prepare_data(cfg, "classification", 0)
    assert data.test is None and "test" not in data.report["rows"]


def test_duplicates_and_conflicts_in_the_report(write_csv, make_cfg):
    frame = pd.concat([_news(30), _news(3),  # 3 exact duplicates
                       pd.DataFrame({"text": ["headline number 4"], "label": ["negative"]})])
    cfg = make_cfg(write_csv("train.csv", frame))
    data = prepare_data(cfg, "classification", 0)
    report = data.report
    assert report["duplicates_removed"] == 3
    assert report["conflicts"]["count"] == 1 and report["conflicts"]["examples"] == ["headline number 4"]
    all_texts = data.train.texts + data.validation.texts + data.test.texts
    assert "headline number 4" not in all_texts and len(all_texts) == 29


def test_overlap_with_train_removed_from_given_files(write_csv, make_cfg):
    cfg = make_cfg(write_csv("train.csv", _news(30)),
                   validation=write_csv("val.csv", _news(33).iloc[[0, 30, 31]]),
                   test=write_csv("test.csv", _news(34).iloc[[1, 30, 32, 33]]))
    data = prepare_data(cfg, "classification", 0)
    assert data.validation.texts == ["headline number 30", "headline number 31"]
    assert data.test.texts == ["headline number 32", "headline number 33"]
    assert data.report["overlap_removed"] == {"validation": 1, "test": 2}


def test_validation_left_empty_by_overlap_is_an_error(write_csv, make_cfg):
    cfg = make_cfg(write_csv("train.csv", _news(30)),
                   validation=write_csv("val.csv", _news(2)))
    message = _error(prepare_data, cfg, "classification", 0)
    assert "val.csv" in message and "no validation rows left" in message
    assert "remove_overlap" in message


# ---------------------------------------------------------------- labels


def test_numeric_labels_sort_in_numeric_order_and_floats_read_as_ints(tmp_path: Path, make_cfg):
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(30)],
                          "label": [[2.0, 10.0, 1.0][i % 3] for i in range(30)]})
    frame.to_parquet(tmp_path / "train.parquet")
    data = prepare_data(make_cfg(str(tmp_path / "train.parquet")), "classification", 0)
    assert data.label_names == ["1", "2", "10"]


def test_label_names_give_the_order(write_csv, make_cfg):
    cfg = make_cfg(write_csv("train.csv", _news(30)), label_names=["positive", "negative", "neutral"])
    data = prepare_data(cfg, "classification", 0)
    assert data.label_names == ["positive", "negative", "neutral"]
    assert data.report["class_balance"]["train"] == {"positive": 8, "negative": 8, "neutral": 8}
    for text, label in zip(data.train.texts, data.train.labels):
        assert data.label_names[label] == LABELS[int(text.split()[-1]) % 3]


def test_label_map_maps_raw_values_in_the_order_of_its_values(write_jsonl, make_cfg):
    records = [{"text": f"t{i}", "label": i % 3} for i in range(30)]
    # int keys, as YAML reads `0: bearish`; DataConfig turns them into text
    cfg = make_cfg(write_jsonl("train.jsonl", records),
                   label_map={2: "bullish", 0: "bearish", 1: "neutral"})
    data = prepare_data(cfg, "classification", 0)
    assert data.label_names == ["bullish", "bearish", "neutral"]
    for text, label in zip(data.train.texts, data.train.labels):
        assert data.label_names[label] == {0: "bearish", 1: "neutral", 2: "bullish"}[int(text[1:]) % 3]


def test_label_not_in_label_map(write_csv, make_cfg):
    cfg = make_cfg(write_csv("train.csv", "text,label\na,0\nb,1\nc,7\n"),
                   label_map={"0": "bearish", "1": "bullish"})
    message = _error(prepare_data, cfg, "classification", 0)
    assert "train.csv" in message and "row 3" in message and "column 'label'" in message
    assert "label '7' is not a key of data.label_map (keys: 0, 1)" in message


def test_label_not_in_label_names_suggests_the_nearest(write_csv, make_cfg):
    cfg = make_cfg(write_csv("train.csv", "text,label\na,positive\nb,Negative\n"),
                   label_names=["negative", "positive"])
    message = _error(prepare_data, cfg, "classification", 0)
    assert "row 2" in message and "label 'Negative' is not in data.label_names" in message
    assert "Did you mean 'negative'?" in message


def test_label_unseen_in_training_in_a_validation_file(write_csv, make_cfg):
    cfg = make_cfg(write_csv("train.csv", _news(30)),
                   validation=write_csv("val.csv", "text,label\nx,neutral\ny,bullish\n"))
    message = _error(prepare_data, cfg, "classification", 0)
    assert "val.csv" in message and "row 2" in message and "label 'bullish'" in message
    assert "negative, neutral, positive" in message


def test_missing_label(write_csv, make_cfg):
    cfg = make_cfg(write_csv("train.csv", "text,label\na,positive\nb,\nc,negative\n"))
    message = _error(prepare_data, cfg, "classification", 0)
    assert "train.csv" in message and "row 2, column 'label': missing label" in message
    assert "header is not counted" in message


def test_a_single_class_is_not_classification(write_csv, make_cfg):
    cfg = make_cfg(write_csv("train.csv", "text,label\na,1\nb,1\nc,1\n"))
    message = _error(prepare_data, cfg, "classification", 0)
    assert "at least 2 different labels" in message and "task: regression" in message


def test_regression_labels(write_csv, make_cfg):
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(20)], "label": np.linspace(-1, 1, 20)})
    data = prepare_data(make_cfg(write_csv("train.csv", frame)), "regression", 0)
    assert data.label_names is None and data.train.labels.dtype == np.float32
    assert "class_balance" not in data.report
    everything = np.concatenate([data.train.labels, data.validation.labels, data.test.labels])
    np.testing.assert_allclose(np.sort(everything), np.linspace(-1, 1, 20), rtol=1e-6)
    stats = data.report["target"]["train"]
    assert -1 <= stats["min"] < stats["mean"] < stats["max"] <= 1 and stats["std"] > 0
    assert "regression" in data.report["split"]["note"]


def test_regression_label_that_is_not_a_number(write_csv, make_cfg):
    cfg = make_cfg(write_csv("train.csv", "text,score\na,0.5\nb,high\n"), label_column="score")
    message = _error(prepare_data, cfg, "regression", 0)
    assert "row 2, column 'score'" in message and "'high' is not a number" in message


# ---------------------------------------------------------------- columns and texts


def test_missing_text_column_lists_columns_and_suggests(write_csv, make_cfg):
    cfg = make_cfg(write_csv("train.csv", "sentence,label\na,1\n"), text_column="sentense")
    message = _error(prepare_data, cfg, "classification", 0)
    assert "train.csv" in message and "column 'sentense'" in message
    assert "the file has columns: sentence, label" in message
    assert "Did you mean 'sentence'?" in message and "data.text_column" in message


def test_missing_label_column(write_csv, make_cfg):
    cfg = make_cfg(write_csv("train.csv", "text,Label\na,1\n"))
    message = _error(prepare_data, cfg, "classification", 0)
    assert "label column 'label'" in message and "Did you mean 'Label'?" in message
    assert "data.label_column" in message


def test_missing_date_and_feature_columns(write_csv, make_cfg):
    path = write_csv("train.csv", "text,label,published_at,amount\na,1,2024-01-01,3\n")
    date_msg = _error(prepare_data, make_cfg(path, date_column="published"), "classification", 0)
    assert "date column 'published'" in date_msg and "Did you mean 'published_at'?" in date_msg
    feat_msg = _error(prepare_data, make_cfg(path, feature_columns=["amount", "amout2"]),
                      "classification", 0)
    assert "feature column 'amout2'" in feat_msg and "data.feature_columns" in feat_msg


def test_whitespace_only_text(write_csv, make_cfg):
    cfg = make_cfg(write_csv("train.csv", 'text,label\nok,1\n"   ",0\n'))
    message = _error(prepare_data, cfg, "classification", 0)
    assert "row 2, column 'text': empty text" in message and "train.csv" in message


def test_non_string_and_null_text_in_jsonl(write_jsonl, make_cfg):
    number = make_cfg(write_jsonl("n.jsonl", [{"text": "ok", "label": 1}, {"text": 5, "label": 0}]))
    message = _error(prepare_data, number, "classification", 0)
    assert "n.jsonl" in message and "row 2" in message
    assert "text must be a string, got int 5" in message
    null = make_cfg(write_jsonl("z.jsonl", [{"text": None, "label": 1}]))
    assert "row 1, column 'text': missing text" in _error(prepare_data, null, "classification", 0)


def test_tabular_rows_are_serialized(tmp_path: Path, make_cfg):
    frame = pd.DataFrame({"credit_amount": [1169, 5951] * 10, "purpose": ["radio/television", None] * 10,
                          "rate": [0.25, 4.0] * 10, "label": ["good", "bad"] * 10})
    frame["credit_amount"] += np.arange(20)
    frame.to_parquet(tmp_path / "credit.parquet")
    cfg = make_cfg(str(tmp_path / "credit.parquet"), feature_columns=["credit_amount", "purpose", "rate"])
    data = prepare_data(cfg, "classification", 0)
    texts = data.train.texts + data.validation.texts + data.test.texts
    assert "credit amount: 1169; purpose: radio/television; rate: 0.25" in texts
    assert "credit amount: 5952; purpose: missing; rate: 4" in texts


# ---------------------------------------------------------------- dates


def test_time_split_through_prepare(write_csv, make_cfg):
    frame = _news(40)
    frame["date"] = pd.date_range("2024-03-01", periods=20).repeat(2).strftime("%Y-%m-%d")
    frame = frame.sample(frac=1, random_state=3)
    cfg = make_cfg(write_csv("train.csv", frame), date_column="date", split={"method": "time"})
    data = prepare_data(cfg, "classification", 0)
    assert data.train.dates.max() < data.validation.dates.min()
    assert data.validation.dates.max() < data.test.dates.min()
    assert len(data.train.dates) == len(data.train.texts)
    assert data.report["dates"]["test"]["max"] == "2024-03-20"


def test_given_files_that_break_time_order_get_a_note(write_csv, make_cfg):
    frame = _news(40)
    frame["date"] = pd.date_range("2024-03-01", periods=40).strftime("%Y-%m-%d")
    val = pd.DataFrame({"text": ["late news", "old news"], "label": ["neutral", "positive"],
                        "date": ["2024-06-01", "2024-03-05"]})
    cfg = make_cfg(write_csv("train.csv", frame), validation=write_csv("val.csv", val),
                   date_column="date", split={"method": "time", "test_size": 0})
    data = prepare_data(cfg, "classification", 0)
    assert "validation has dates not later than the last training date" in data.report["split"]["note"]


def test_bad_date_in_prepare(write_csv, make_cfg):
    cfg = make_cfg(write_csv("train.csv", "text,label,day\na,1,2024-01-01\nb,0,yesterday\n"),
                   date_column="day")
    message = _error(prepare_data, cfg, "classification", 0)
    assert "train.csv" in message and "row 2, column 'day'" in message and "'yesterday'" in message


# ---------------------------------------------------------------- evaluation and prediction input


def test_load_examples_reuses_training_cleaning_and_label_order(write_csv, make_cfg):
    cfg = make_cfg("unused.csv", clean={"replace_tickers": True})
    path = write_csv("eval.csv", "text,label\n  $MSFT   up ,positive\nflat,neutral\n")
    examples = load_examples(path, cfg, "classification", ["positive", "neutral", "negative"])
    assert examples.texts == ["TICKER up", "flat"]
    assert examples.labels.tolist() == [0, 1] and examples.labels.dtype == np.int64
    assert examples.source == path


def test_load_examples_unknown_label(write_csv, make_cfg):
    path = write_csv("eval.csv", "text,label\na,positive\nb,negative\nc,bullish\n")
    message = _error(load_examples, path, make_cfg("unused.csv"), "classification",
                     ["negative", "positive"])
    assert "eval.csv" in message and "row 3" in message and "label 'bullish'" in message
    assert "trained on: negative, positive" in message


def test_load_examples_without_labels(write_csv, make_cfg):
    path = write_csv("predict.csv", "text\nrates cut\n")
    examples = load_examples(path, make_cfg("unused.csv"), "classification", ["a", "b"],
                             require_labels=False)
    assert examples.labels is None and examples.texts == ["rates cut"]
    assert "label column 'label'" in _error(load_examples, path, make_cfg("unused.csv"),
                                            "classification", ["a", "b"])


def test_load_examples_regression(write_csv, make_cfg):
    path = write_csv("eval.csv", "text,label\na,0.5\nb,-2\n")
    examples = load_examples(path, make_cfg("unused.csv"), "regression", None)
    assert examples.labels.dtype == np.float32 and examples.labels.tolist() == [0.5, -2.0]


def test_frame_to_texts_counts_rows_from_first_row(make_cfg):
    chunk = pd.DataFrame({"text": ["fine", "  "]})
    message = _error(frame_to_texts, chunk, make_cfg("unused.csv"), "big.csv", first_row=1001)
    assert "big.csv" in message and "row 1002" in message


# ---------------------------------------------------------------- printing


def test_print_report_shows_the_tables(write_csv, make_cfg):
    frame = pd.concat([_news(30), pd.DataFrame({"text": ["headline number 4"], "label": ["positive"]})])
    data = prepare_data(make_cfg(write_csv("train.csv", frame)), "classification", 0)
    out = io.StringIO()
    print_report(data.report, Console(file=out, width=200, force_terminal=False))
    text = out.getvalue()
    assert "Class balance" in text and "neutral" in text
    assert "train.csv [carved validation]" in text  # brackets are not eaten as markup
    assert "1 texts in 2 rows, dropped" in text and "headline number 4" in text


def test_time_split_with_one_class_in_training_names_the_label(write_csv, make_cfg):
    # Every early row is 'good': a time split leaves the model nothing to tell apart.
    frame = pd.DataFrame({"text": [f"loan {i}" for i in range(40)],
                          "label": ["good"] * 30 + ["bad", "good"] * 5,
                          "date": pd.date_range("2024-01-01", periods=40).strftime("%Y-%m-%d")})
    cfg = make_cfg(write_csv("loans.csv", frame), date_column="date",
                   split={"method": "time", "validation_size": 0.15, "test_size": 0.15})
    with pytest.raises(DataError, match="the training split \\(28 rows, time split\\) holds only the label "
                                        "'good' in column 'label'"):
        prepare_data(cfg, "classification", 0)


def test_max_train_rows_samples_training_rows_only(write_csv, make_cfg):
    frame = pd.DataFrame({"text": [f"note {i}" for i in range(200)], "label": ["good", "bad", "good", "good"] * 50})
    cfg = make_cfg(write_csv("s.csv", frame), split={"max_train_rows": 60})
    data = prepare_data(cfg, "classification", 0)
    assert len(data.train) == 60 and (len(data.validation), len(data.test)) == (20, 20)
    assert np.bincount(data.train.labels).tolist() == [15, 45]  # the class mix is kept
