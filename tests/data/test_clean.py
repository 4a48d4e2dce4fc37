"""clean_text, serialize_row, duplicates/conflicts and overlap removal."""

from __future__ import annotations

import numpy as np
import pytest
import pandas as pd

from fintune.config import CleanConfig
from fintune.data import clean_text, serialize_row
from fintune.data.clean import drop_duplicates_and_conflicts, remove_overlap

ALL = CleanConfig(replace_urls=True, replace_tickers=True)


# ---------------------------------------------------------------- clean_text


def test_nfkc_turns_full_width_and_ligatures_into_plain_text():
    assert clean_text("ｐｒｏｆｉｔ ﬁnal", CleanConfig()) == "profit final"


def test_nfkc_can_be_switched_off():
    cfg = CleanConfig(unicode_nfkc=False)
    assert clean_text("ｐｒｏｆｉｔ", cfg) == "ｐｒｏｆｉｔ"


def test_whitespace_is_collapsed_and_stripped():
    assert clean_text("  EPS \t beat\n\nestimates\u00a0 ", CleanConfig()) == "EPS beat estimates"


def test_whitespace_kept_when_switched_off():
    cfg = CleanConfig(whitespace=False, unicode_nfkc=False)
    assert clean_text("  a \t b ", cfg) == "  a \t b "


def test_urls_replaced_keeping_trailing_punctuation():
    text = "Filing at https://www.sec.gov/x?id=1. More on www.reuters.com/markets, later"
    assert clean_text(text, ALL) == "Filing at URL. More on URL, later"


def test_urls_and_tickers_untouched_by_default():
    text = "$AAPL at https://x.com"
    assert clean_text(text, CleanConfig()) == text


def test_cashtags_replaced_but_not_dollar_amounts():
    text = "$AAPL up, $BRK.B flat, $tsla's run; paid $100, US$5 and US$AUD"
    assert clean_text(text, ALL) == "TICKER up, TICKER flat, TICKER's run; paid $100, US$5 and US$AUD"


def test_full_width_cashtag_is_replaced_after_nfkc():
    assert clean_text("＄ＴＳＬＡ rallies", ALL) == "TICKER rallies"


def test_url_with_dollar_sign_becomes_one_url():
    assert clean_text("see https://x.com/$AAPL now", ALL) == "see URL now"


# ---------------------------------------------------------------- serialize_row


def test_serialize_row_humanizes_names_and_formats_values():
    row = {"credit_amount": 1169, "purpose": "radio/television", "rate": 0.123456789,
           "duration_months": 6.0, "savings": float("nan"), "job": None}
    text = serialize_row(row, ["credit_amount", "purpose", "rate", "duration_months", "savings", "job"])
    assert text == ("credit amount: 1169; purpose: radio/television; rate: 0.1235; "
                    "duration months: 6; savings: missing; job: missing")


def test_serialize_row_handles_numpy_and_pandas_values_in_column_order():
    row = {"b": np.int64(3), "a": np.float32(2.5), "c": pd.NA, "d": np.bool_(True)}
    assert serialize_row(row, ["a", "b", "c", "d"]) == "a: 2.5; b: 3; c: missing; d: true"


def test_serialize_row_formats_large_and_small_numbers():
    row = {"x": 1.5e-7, "y": 12345678.9, "z": -2500.125, "w": 1234567}
    assert serialize_row(row, ["x", "y", "z", "w"]) == "x: 1.5e-07; y: 12,345,678.9; z: -2500.12; w: 1,234,567"


def test_serialize_row_decodes_categories_and_uses_readable_names():
    row = {"SEX": 2, "EDUCATION": 7, "LIMIT_BAL": 20000.0, "AccidentArea": "Urban"}
    text = serialize_row(row, ["SEX", "EDUCATION", "LIMIT_BAL", "AccidentArea"],
                         names={"LIMIT_BAL": "credit limit (NT$)"},
                         categories={"SEX": {"1": "male", "2": "female"}, "EDUCATION": {"1": "graduate school"}})
    # An unlisted code prints as is, so nothing is silently dropped.
    assert text == "sex: female; education: 7; credit limit (NT$): 20,000; accident area: Urban"


@pytest.mark.parametrize("column, words", [
    ("credit_amount", "credit amount"), ("AccidentArea", "accident area"), ("LIMIT_BAL", "limit bal"),
    ("DJ_return", "DJ return"), ("PAY_0", "pay 0"), ("FraudFound_P", "fraud found P"),
])
def test_humanize(column, words):
    from fintune.data.clean import humanize

    assert humanize(column) == words


# ---------------------------------------------------------------- duplicates and conflicts


def _frame(pairs: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame({"text": [t for t, _ in pairs], "label": [lab for _, lab in pairs],
                         "row": range(1, len(pairs) + 1)})


def test_exact_duplicates_keep_the_first_row():
    frame = _frame([("a", "pos"), ("b", "neg"), ("a", "pos"), ("a", "pos")])
    kept, removed, conflicts = drop_duplicates_and_conflicts(frame, CleanConfig())
    assert removed == 2
    assert kept["row"].tolist() == [1, 2]
    assert conflicts["count"] == 0 and conflicts["examples"] == []


def test_conflicting_texts_are_dropped_entirely_and_reported():
    frame = _frame([("a", "pos"), ("a", "neg"), ("b", "neg"), ("c", "pos"), ("c", "neu"),
                    ("c", "pos")])
    kept, removed, conflicts = drop_duplicates_and_conflicts(frame, CleanConfig())
    assert kept["text"].tolist() == ["b"]
    assert removed == 1  # the second ("c", "pos")
    assert conflicts == {"count": 2, "rows": 4, "dropped": True, "examples": ["a", "c"]}


def test_conflicts_kept_but_reported_when_drop_conflicts_is_off():
    frame = _frame([("a", "pos"), ("a", "neg"), ("b", "neg")])
    kept, _, conflicts = drop_duplicates_and_conflicts(frame, CleanConfig(drop_conflicts=False))
    assert kept["text"].tolist() == ["a", "a", "b"]
    assert conflicts["count"] == 1 and conflicts["dropped"] is False


def test_duplicates_kept_when_drop_duplicates_is_off():
    frame = _frame([("a", "pos"), ("a", "pos")])
    kept, removed, _ = drop_duplicates_and_conflicts(frame, CleanConfig(drop_duplicates=False))
    assert removed == 0 and len(kept) == 2


def test_at_most_five_conflict_examples():
    pairs = [(f"t{i}", lab) for i in range(8) for lab in ("pos", "neg")]
    _, _, conflicts = drop_duplicates_and_conflicts(_frame(pairs), CleanConfig())
    assert conflicts["count"] == 8
    assert conflicts["examples"] == ["t0", "t1", "t2", "t3", "t4"]


# ---------------------------------------------------------------- overlap


def test_overlap_removed_from_validation_and_test():
    train = _frame([("a", "pos"), ("b", "neg")])
    validation = _frame([("a", "pos"), ("c", "neg"), ("d", "pos")])
    test = _frame([("b", "neg"), ("c", "neg"), ("e", "pos")])
    validation, test, removed = remove_overlap(train, validation, test)
    assert validation["text"].tolist() == ["c", "d"]
    assert test["text"].tolist() == ["e"]  # "b" was in train, "c" in validation
    assert removed == {"validation": 1, "test": 2}


def test_overlap_without_test_split():
    validation, test, removed = remove_overlap(_frame([("a", "x")]), _frame([("a", "y"), ("b", "x")]),
                                               None)
    assert test is None and validation["text"].tolist() == ["b"] and removed["validation"] == 1
