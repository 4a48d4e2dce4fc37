"""Lag windows from a price table: past values only, errors, and a planted future-peeking feature."""

from __future__ import annotations

import numpy as np
import pytest

from fintune.config import WindowConfig
from fintune.data import prepare_data
from fintune.data.features import FeatureEncoder, check_leakage
from fintune.data.columns import input_columns, load_table
from fintune.errors import DataError
from tests.conftest import price_frame


def _cfg(make_cfg, path, **windows):
    return make_cfg(path, feature_columns=["ret", "log_volume"], label_column="log_volume", date_column="date",
                    windows=WindowConfig(**{"lags": 3, "rolling": [5], **windows}),
                    split={"method": "time", "validation_size": 0.2, "test_size": 0.2})


def test_window_holds_only_values_from_before_the_target_row(write_csv, make_cfg):
    prices = price_frame(60)
    shuffled = prices.sample(frac=1, random_state=0)  # the file's order must not matter
    table = load_table(write_csv("p.csv", shuffled), _cfg(make_cfg, "unused"))
    assert input_columns(_cfg(make_cfg, "unused")) == [
        "ret_lag1", "ret_lag2", "ret_lag3", "log_volume_lag1", "log_volume_lag2", "log_volume_lag3",
        "ret_mean5", "ret_std5", "log_volume_mean5", "log_volume_std5"]
    assert len(table) == 60 - 5  # the first 5 rows lack a full rolling window
    for _, row in table.iterrows():
        t = prices.index[prices["date"] == row["date"]][0]
        assert float(row["log_volume"]) == pytest.approx(prices["log_volume"][t])  # the target: row t
        for k in (1, 2, 3):
            assert row[f"log_volume_lag{k}"] == pytest.approx(prices["log_volume"][t - k])
        assert row["ret_std5"] == pytest.approx(np.std(prices["ret"][t - 5:t]))
    # Each index is the row's line in the shuffled file, so errors point at the right place.
    first = table.index[0]
    assert shuffled.iloc[first - 1]["date"] == table.iloc[0]["date"]


def test_horizon_skips_the_steps_in_between(write_csv, make_cfg):
    table = load_table(write_csv("p.csv", price_frame(40)), _cfg(make_cfg, "x", horizon=5, rolling=[]))
    assert [c for c in table.columns if c.startswith("ret_")] == ["ret_lag5", "ret_lag6", "ret_lag7"]


def test_direction_target_is_up_or_down_by_the_sign(write_csv, make_cfg):
    cfg = make_cfg("x", feature_columns=["ret"], label_column="ret", date_column="date",
                   windows=WindowConfig(lags=2, rolling=[], target="direction"))
    table = load_table(write_csv("p.csv", price_frame(30)), cfg)
    assert set(table["ret"]) == {"Up", "Down"}
    assert (table["ret"] == "Up").tolist() == (price_frame(30)["ret"].iloc[2:] > 0).tolist()


def test_planted_future_value_is_rejected_by_the_leak_check(write_csv, make_cfg):
    prices = price_frame(300)
    # Tomorrow's volume, sitting in today's row: lagged once, it *is* the target.
    prices["next_volume"] = prices["log_volume"].shift(-1)
    cfg = make_cfg(write_csv("p.csv", prices), feature_columns=["ret", "next_volume"], label_column="log_volume",
                   date_column="date", windows=WindowConfig(lags=2, rolling=[5]),
                   split={"method": "time"})
    data = prepare_data(cfg, "regression", 0)
    enc = FeatureEncoder.fit(data.train.features, input_columns(cfg), [], data.train.source)
    with pytest.raises(DataError, match="'next_volume_lag1' alone predicts the target.*the future"):
        check_leakage(data.train.features, enc, data.train.labels, "regression", data.train.source)
    honest = make_cfg(cfg.train, feature_columns=["ret", "log_volume"], label_column="log_volume",
                      date_column="date", windows=WindowConfig(lags=2, rolling=[5]), split={"method": "time"})
    data = prepare_data(honest, "regression", 0)
    enc = FeatureEncoder.fit(data.train.features, input_columns(honest), [], data.train.source)
    check_leakage(data.train.features, enc, data.train.labels, "regression", data.train.source)


def test_window_errors_name_the_column_row_or_sizes(write_csv, make_cfg):
    prices = price_frame(30)
    prices["ret"] = prices["ret"].astype(object)
    prices.loc[9, "ret"] = "halted"
    with pytest.raises(DataError, match="'ret' holds numbers, but this row holds 'halted'") as err:
        load_table(write_csv("p.csv", prices), _cfg(make_cfg, "x"))
    assert err.value.row == 10
    prices = price_frame(30)
    prices.loc[4, "date"] = "2020-13-45"
    with pytest.raises(DataError, match="cannot parse '2020-13-45' as a date") as err:
        load_table(write_csv("p.csv", prices), _cfg(make_cfg, "x"))
    assert (err.value.row, err.value.column) == (5, "date")
    with pytest.raises(DataError, match="has 4 rows, fewer than the 6 one window needs"):
        load_table(write_csv("p.csv", price_frame(4)), _cfg(make_cfg, "x"))
    prices = price_frame(30)
    prices.loc[3, "date"] = prices.loc[2, "date"]
    with pytest.raises(DataError, match="appears twice; data.windows needs one row per date"):
        load_table(write_csv("p.csv", prices), _cfg(make_cfg, "x"))


def test_windowed_data_splits_by_time_without_look_ahead(write_csv, make_cfg):
    data = prepare_data(_cfg(make_cfg, write_csv("p.csv", price_frame(120))), "regression", 0)
    assert data.train.dates.max() < data.validation.dates.min()
    assert data.validation.dates.max() < data.test.dates.min()
    assert "ret lag1: " in data.train.texts[0]
