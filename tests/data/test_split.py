"""carve (stratified / random / time) and parse_dates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fintune.config import SplitConfig
from fintune.data.split import carve, parse_dates
from fintune.errors import ConfigError, DataError


def _labelled(counts: dict[int, int]) -> pd.DataFrame:
    labels = np.concatenate([np.full(n, label) for label, n in counts.items()])
    return pd.DataFrame({"text": [f"t{i}" for i in range(len(labels))], "label": labels})


def _dated(dates: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(len(dates))], "label": 0,
                          "date": pd.to_datetime(dates)})
    return frame.sample(frac=1, random_state=0)  # the input order must not matter


def _carve(frame, seed=0, task="classification", **split):
    return carve(frame, SplitConfig(**split), seed, task, carve_validation=True,
                 carve_test=SplitConfig(**split).test_size > 0, source="train.csv",
                 label_names=["neg", "neu", "pos"])


# ---------------------------------------------------------------- stratified and random


def test_stratified_split_keeps_class_proportions():
    frame = _labelled({0: 600, 1: 300, 2: 100})
    carved = _carve(frame)
    assert carved.method == "stratified" and carved.note is None
    assert (len(carved.train), len(carved.validation), len(carved.test)) == (800, 100, 100)
    for part in (carved.train, carved.validation, carved.test):
        shares = part["label"].value_counts(normalize=True).sort_index().to_numpy()
        np.testing.assert_allclose(shares, [0.6, 0.3, 0.1], atol=0.011)


def test_splits_are_disjoint_and_cover_everything():
    frame = _labelled({0: 50, 1: 50})
    carved = _carve(frame, validation_size=0.2, test_size=0.3)
    texts = [set(p["text"]) for p in (carved.train, carved.validation, carved.test)]
    assert set.union(*texts) == set(frame["text"])
    assert sum(len(t) for t in texts) == 100
    assert (len(carved.validation), len(carved.test)) == (20, 30)


def test_seed_makes_split_reproducible():
    frame = _labelled({0: 50, 1: 50})
    first, again, other = _carve(frame, seed=1), _carve(frame, seed=1), _carve(frame, seed=2)
    assert first.validation["text"].tolist() == again.validation["text"].tolist()
    assert first.validation["text"].tolist() != other.validation["text"].tolist()


def test_stratified_falls_back_to_random_when_a_class_is_tiny():
    frame = _labelled({0: 40, 1: 40, 2: 1})
    carved = _carve(frame)
    assert carved.method == "random"
    assert "stratified split impossible" in carved.note and "'pos' (1 row)" in carved.note
    assert len(carved.train) + len(carved.validation) + len(carved.test) == 81


def test_regression_is_split_at_random_with_a_note():
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(20)], "label": np.linspace(0, 1, 20)})
    carved = _carve(frame, task="regression")
    assert carved.method == "random" and "regression" in carved.note


def test_random_method_has_no_note():
    carved = _carve(_labelled({0: 10, 1: 10}), method="random")
    assert carved.method == "random" and carved.note is None


def test_test_size_zero_means_no_test_split():
    carved = _carve(_labelled({0: 10, 1: 10}), test_size=0)
    assert carved.test is None and len(carved.validation) == 2 and len(carved.train) == 18


def test_only_missing_splits_are_carved():
    frame = _labelled({0: 10, 1: 10})
    carved = carve(frame, SplitConfig(), 0, "classification", carve_validation=False,
                   carve_test=True, source="train.csv")
    assert carved.validation is None and len(carved.test) == 2
    untouched = carve(frame, SplitConfig(), 0, "classification", carve_validation=False,
                      carve_test=False, source="train.csv")
    assert untouched.method == "files" and untouched.train is frame


def test_sizes_that_leave_no_training_rows():
    with pytest.raises(DataError, match="train.csv: has 2 usable rows, too few"):
        _carve(_labelled({0: 1, 1: 1}))


def test_validation_plus_test_size_must_be_below_one():
    with pytest.raises(ConfigError, match="validation_size \\+ data.split.test_size"):
        _carve(_labelled({0: 10, 1: 10}), validation_size=0.5, test_size=0.5)


# ---------------------------------------------------------------- time


def test_time_split_has_no_look_ahead():
    dates = pd.date_range("2024-01-01", periods=100, freq="D").strftime("%Y-%m-%d").tolist()
    carved = _carve(_dated(dates), method="time")
    assert carved.method == "time"
    train, validation, test = carved.train["date"], carved.validation["date"], carved.test["date"]
    assert (len(train), len(validation), len(test)) == (80, 10, 10)
    assert train.max() < validation.min() <= validation.max() < test.min()
    assert train.is_monotonic_increasing


def test_time_split_never_puts_one_date_in_two_splits():
    # 10 rows: the 80/10/10 cuts would fall inside the runs of equal dates.
    dates = ["2024-01-01"] * 4 + ["2024-01-02"] * 4 + ["2024-01-03"] * 2
    carved = _carve(_dated(dates), method="time", validation_size=0.2, test_size=0.2)
    parts = [set(p["date"]) for p in (carved.train, carved.validation, carved.test)]
    assert parts == [{pd.Timestamp("2024-01-01")}, {pd.Timestamp("2024-01-02")},
                     {pd.Timestamp("2024-01-03")}]


def test_time_split_moves_the_cut_to_the_nearest_date_boundary():
    # 20 rows; the validation cut (target 16) lies in a run of one date covering rows 14..17.
    dates = [f"2024-01-{d:02d}" for d in range(1, 15)] + ["2024-01-20"] * 4 + ["2024-01-25"] * 2
    carved = _carve(_dated(dates), method="time", validation_size=0.1, test_size=0.1)
    assert len(carved.test) == 2
    assert carved.train["date"].max() < carved.validation["date"].min()
    assert set(carved.validation["date"]) == {pd.Timestamp("2024-01-20")}
    assert len(carved.train) + len(carved.validation) + len(carved.test) == 20


def test_time_split_needs_enough_distinct_dates():
    with pytest.raises(DataError, match="only 2 distinct date.*needs at least 3"):
        _carve(_dated(["2024-01-01"] * 5 + ["2024-01-02"] * 5), method="time")


# ---------------------------------------------------------------- parse_dates


def test_parse_dates_handles_iso_numbers_and_mixed_formats():
    parsed = parse_dates(pd.Series(["2024-01-31", "2024-02-01 16:00", "March 3, 2024"]),
                         "f.csv", "date")
    assert parsed.tolist() == [pd.Timestamp("2024-01-31"), pd.Timestamp("2024-02-01 16:00"),
                               pd.Timestamp("2024-03-03")]
    as_int = parse_dates(pd.Series([20240131, 20240201]), "f.csv", "date")
    assert as_int.iloc[0] == pd.Timestamp("2024-01-31")


def test_unparseable_date_names_file_row_and_column():
    with pytest.raises(DataError) as err:
        parse_dates(pd.Series(["2024-01-01", "2024-01-02", "soon"]), "news.csv", "published")
    message = str(err.value)
    assert "news.csv" in message and "row 3" in message and "'published'" in message
    assert "cannot parse 'soon' as a date" in message and "2024-01-31" in message


def test_empty_date_is_an_error_with_row():
    with pytest.raises(DataError, match="row 12, column 'date': empty date"):
        parse_dates(pd.Series(["2024-01-01", None]), "f.csv", "date", first_row=11)


# ---------------------------------------------------------------- walk-forward, gap, sizes


def _days(n: int) -> list[str]:
    return pd.date_range("2024-01-01", periods=n, freq="D").strftime("%Y-%m-%d").tolist()


@pytest.mark.parametrize("fold", [0, 1, 2, 3])
def test_walk_forward_trains_on_the_past_and_tests_on_the_next_block(fold):
    frame = _dated(_days(100))
    carved = carve(frame, SplitConfig(method="time", fold=fold, folds=4, validation_size=0.2), 0,
                   "classification", carve_validation=True, carve_test=True, source="p.csv")
    train, validation, test = carved.train["date"], carved.validation["date"], carved.test["date"]
    assert len(test) == 20 and len(train) + len(validation) == 20 * (fold + 1)
    assert train.max() < validation.min() <= validation.max() < test.min()
    assert carved.method == f"walk-forward fold {fold + 1}/4"


def test_gap_drops_rows_before_each_cut():
    carved = carve(_dated(_days(100)), SplitConfig(method="time", gap=3), 0, "classification",
                   carve_validation=True, carve_test=True, source="p.csv")
    assert (len(carved.train), len(carved.validation), len(carved.test)) == (77, 7, 10)
    assert (carved.validation["date"].min() - carved.train["date"].max()).days == 4


def test_time_split_with_too_few_rows_names_the_sizes():
    with pytest.raises(DataError, match="a time split gives train 12, validation 1, test 1 rows; every "
                                        "part needs at least 2"):
        carve(_dated(_days(14)), SplitConfig(method="time", validation_size=0.05, test_size=0.05), 0,
              "classification", carve_validation=True, carve_test=True, source="p.csv")
    with pytest.raises(DataError, match=r"train 6, validation 0, test 1 rows after dropping 2 gap row\(s\)"):
        carve(_dated(_days(10)), SplitConfig(method="time", gap=2), 0, "classification",
              carve_validation=True, carve_test=True, source="p.csv")


def test_fold_needs_a_time_split():
    with pytest.raises(ConfigError, match="data.split.fold .* needs data.split.method: time"):
        carve(_dated(_days(50)), SplitConfig(method="random", fold=0), 0, "classification",
              carve_validation=True, carve_test=True, source="p.csv")
