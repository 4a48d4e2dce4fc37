"""Canonical names: spellings of one name share a key; different names never do."""

from __future__ import annotations

import pytest

from fintune.graph.canonical import canonical_key, surface_form

SAME_KEY = [
    # (spellings that must merge, the key)
    (["Deutsche Bank AG", "DEUTSCHE BANK", "Deutsche Bank's", "Deutsche Bank’s", "deutsche  bank"], "deutsche bank"),
    (["Apple Inc.", "Apple", "APPLE INC", "Apple, Inc.", "Apple Incorporated", "Apple™"], "apple"),
    (["JPMorgan Chase & Co.", "JPMorgan Chase"], "jpmorgan chase"),
    (["J.P. Morgan", "JP Morgan", "J. P. Morgan"], "jp morgan"),
    (["Bank of America, N.A.", "Bank of America Corporation", "bank of america corp."], "bank of america"),
    (["Coca-Cola Co", "Coca Cola", "The Coca–Cola Company"], "coca cola"),  # en dash too
    (["Banco Santander, S.A.", "Banco Santander SA"], "banco santander"),
    (["Sony Group Co., Ltd.", "Sony Group"], "sony group"),  # suffixes dropped repeatedly
    (["ＨＳＢＣ Holdings plc", "HSBC Holdings"], "hsbc holdings"),  # full-width letters (NFKC)
    (["The Goldman Sachs Group, Inc.", "Goldman Sachs Group"], "goldman sachs group"),
]


@pytest.mark.parametrize(("spellings", "key"), SAME_KEY)
def test_spellings_share_one_key(spellings: list[str], key: str) -> None:
    assert {canonical_key(s) for s in spellings} == {key}


@pytest.mark.parametrize(("name", "key"), [
    ("Silicon Valley Bank", "silicon valley bank"),  # "bank" is part of the name, not a legal form
    ("Goldman Sachs", "goldman sachs"),  # "Group" is kept (see the module docstring): no merge with it
    ("Coinbase", "coinbase"),  # only whole trailing words are suffixes
    ("Allianz SE", "allianz"),
    ("Siemens AG", "siemens"),
    ("AT&T Inc.", "att"),
    ("Theranos", "theranos"),  # a leading "the" only as a word
    ("Plan B Capital", "plan b capital"),  # one letter alone is not an initial run
    ("S & P Global", "sp global"),
])
def test_key(name: str, key: str) -> None:
    assert canonical_key(name) == key


def test_group_and_holdings_are_kept() -> None:
    assert canonical_key("The Goldman Sachs Group, Inc.") != canonical_key("Goldman Sachs")
    assert canonical_key("HSBC Holdings plc") != canonical_key("HSBC")


@pytest.mark.parametrize("name", ["Inc.", "The", "Co., Ltd.", "  ", "...", "The Company"])
def test_nothing_left_is_empty(name: str) -> None:
    assert canonical_key(name) == ""


@pytest.mark.parametrize(("text", "shown"), [
    ("Deutsche Bank's", "Deutsche Bank"),
    ("  Apple\u00a0Inc. ", "Apple Inc."),
    ('"Commerzbank",', "Commerzbank"),
])
def test_surface_form(text: str, shown: str) -> None:
    assert surface_form(text) == shown
