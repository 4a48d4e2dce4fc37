"""FeatureEncoder: column kinds, standardization fitted on train, one-hot, errors, leak check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fintune.data import prepare_data
from fintune.data.features import LEAK_SCORE, FeatureEncoder, check_leakage
from fintune.errors import DataError
from tests.conftest import credit_frame


def _frame(**cols) -> pd.DataFrame:
    frame = pd.DataFrame(cols)
    frame.index = np.arange(1, len(frame) + 1)  # file rows, as load_table sets them
    return frame


def test_numbers_standardize_with_training_statistics_and_categories_one_hot():
    train = _frame(income=["100", "300", None, "200"], purpose=["car", "tv", "car", "tv"])
    enc = FeatureEncoder.fit(train, ["income", "purpose"], [], "train.csv")
    assert (enc.numeric, enc.categorical) == (["income"], ["purpose"])
    assert enc.names == ["income", "income=missing", "purpose=car", "purpose=tv", "purpose=other"]
    later = _frame(income=[200.0, 400.0, np.nan], purpose=["tv", "boat", "car"])
    x = enc.transform(later, "test.csv")
    std = np.std([100, 300, 200])
    np.testing.assert_allclose(x[:, 0], [0.0, 200 / std, 0.0], rtol=1e-6)  # missing -> the train mean
    np.testing.assert_array_equal(x[:, 1], [0, 0, 1])  # missing flag
    np.testing.assert_array_equal(x[:, 2:], [[0, 1, 0], [0, 0, 1], [1, 0, 0]])  # "boat" was never seen


def test_listed_categorical_columns_are_one_hot_even_when_numeric():
    train = _frame(sex=[1, 2, 2, 1], age=[30, 40, 50, 60])
    enc = FeatureEncoder.fit(train, ["sex", "age"], ["sex"], "train.csv")
    assert enc.categorical == ["sex"] and enc.categories["sex"] == ["1", "2"]


def test_encoder_round_trips_through_json(tmp_path):
    train = _frame(income=[1.0, 2.0, 3.0], purpose=["a", "b", "a"])
    enc = FeatureEncoder.fit(train, ["income", "purpose"], [], "train.csv")
    enc.save(tmp_path)
    again = FeatureEncoder.load(tmp_path)
    np.testing.assert_array_equal(again.transform(train, "x"), enc.transform(train, "x"))


def test_text_in_a_number_column_names_the_column_and_row():
    values = [str(v) for v in range(30)]
    values[17] = "n/a (ask branch)"
    with pytest.raises(DataError, match=r"feature column 'income' holds numbers, but this row holds "
                                        r"'n/a \(ask branch\)'.*data.categorical_columns") as err:
        FeatureEncoder.fit(_frame(income=values), ["income"], [], "train.csv")
    assert (err.value.row, err.value.column) == (18, "income")
    enc = FeatureEncoder.fit(_frame(income=["1", "2"]), ["income"], [], "train.csv")
    with pytest.raises(DataError, match="'income' holds numbers") as err:
        enc.transform(_frame(income=["3", "three"]), "predict.csv")
    assert err.value.row == 2


def test_leak_check_rejects_a_copy_of_the_label_and_keeps_real_features():
    frame = credit_frame(300)
    labels = (frame["label"] == "bad").to_numpy(dtype=int)
    frame.index = np.arange(1, 301)
    frame["outcome_code"] = np.where(labels == 1, 7.0, 3.0)  # recorded after the loan went bad
    columns = ["income", "debt_ratio", "purpose", "age"]
    enc = FeatureEncoder.fit(frame, columns, [], "train.csv")
    scores = check_leakage(frame, enc, labels, "classification", "train.csv")  # real features pass
    assert set(scores) == set(columns) and all(v is None or v < LEAK_SCORE for v in scores.values())
    assert scores["debt_ratio"] > 0.6  # the real signal is measured, not skipped
    leaky = FeatureEncoder.fit(frame, columns + ["outcome_code"], [], "train.csv")
    with pytest.raises(DataError, match="'outcome_code' alone predicts the target") as err:
        check_leakage(frame, leaky, labels, "classification", "train.csv")
    assert err.value.column == "outcome_code"


def test_leak_check_on_categories_measures_above_the_majority_rate():
    # 94% of rows are one class: a column that is nearly constant is not "94% pure".
    labels = np.array([0] * 94 + [1] * 6)
    frame = _frame(branch=["north", "south"] * 50)
    enc = FeatureEncoder.fit(frame, ["branch"], [], "x")
    assert check_leakage(frame, enc, labels, "classification", "x")["branch"] < 0.1  # no purer than the majority
    copied = _frame(flag=np.where(labels == 1, "fraud", "ok"))
    enc = FeatureEncoder.fit(copied, ["flag"], [], "x")
    with pytest.raises(DataError, match="'flag'"):
        check_leakage(copied, enc, labels, "classification", "x")


def test_prepared_splits_carry_raw_features_indexed_by_file_row(write_csv, make_cfg):
    path = write_csv("credit.csv", credit_frame(200))
    cfg = make_cfg(path, feature_columns=["income", "purpose"], label_column="label")
    data = prepare_data(cfg, "classification", 0)
    for split in (data.train, data.validation, data.test):
        assert list(split.features.columns) == ["income", "purpose"]
        assert len(split.features) == len(split.texts)
    raw = pd.read_csv(path, dtype=str)
    row = int(data.test.features.index[0])
    assert data.test.features.loc[row, "purpose"] == raw.loc[row - 1, "purpose"]


def test_fusion_dedup_keeps_rows_with_the_same_text_and_other_features(write_csv, make_cfg):
    frame = pd.DataFrame({"text": ["car loan"] * 20, "income": [str(1000 + i) for i in range(20)],
                          "label": ["good", "bad"] * 10})
    cfg = make_cfg(write_csv("f.csv", frame), feature_columns=["income"], text_column="text",
                   split={"method": "random"})
    data = prepare_data(cfg, "classification", 0)
    assert len(data.train) + len(data.validation) + len(data.test) == 20


def test_piecewise_linear_bins_follow_training_quantiles():
    train = _frame(amount=[float(v) for v in range(101)], flag=[0, 1] * 50 + [0])
    enc = FeatureEncoder.fit(train, ["amount", "flag"], [], "x", numeric_bins=4)
    assert enc.bins == {"amount": [0.0, 25.0, 50.0, 75.0, 100.0]}  # a 0/1 column gets no bins
    assert enc.names[-4:] == ["amount~bin1", "amount~bin2", "amount~bin3", "amount~bin4"]
    x = enc.transform(_frame(amount=[30.0, 200.0, np.nan], flag=[0, 1, 0]), "x")
    np.testing.assert_allclose(x[:, -4:], [[1, 0.2, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]])
