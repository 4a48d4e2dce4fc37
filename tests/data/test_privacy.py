"""Masking of personal data: each type, its near misses, pseudonyms, the corpus targets, and
the same masking in training data, reports and prediction."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from fintune.config import DEFAULT_PII_TYPES, PII_TYPES, DataConfig, PrivacyConfig
from fintune.data import prepare_data
from fintune.data.privacy import detect, mask
from fintune.errors import ConfigError
from tests.pii_corpus import corpus, score

CFG = PrivacyConfig(types=list(PII_TYPES))  # every detector, the imprecise ones by name


@pytest.mark.parametrize(("text", "expected"), [
    ("write to jane.doe+bank@example.co.uk today", "write to <EMAIL> today"),
    ("call +44 20 7946 0958 or (415) 555-0132 x12", "call <PHONE> or <PHONE>"),
    ("card 4111 1111 1111 1111 declined", "card <CARD> declined"),
    ("card 4111-1111-1111-1112 declined", "card 4111-1111-1111-1112 declined"),  # fails Luhn
    ("IBAN GB29 NWBK 6016 1331 9268 19 please", "IBAN <IBAN> please"),
    ("IBAN GB29 NWBK 6016 1331 9268 18 please", "IBAN GB29 NWBK 6016 1331 9268 18 please"),  # fails mod 97
    ("SWIFT: DEUTDEFF500 for the wire", "SWIFT: <SWIFT> for the wire"),
    ("EARNINGS GUIDANCE raised", "EARNINGS GUIDANCE raised"),  # looks like a BIC (IN), no cue
    ("SSN 447-24-1001 on file", "SSN <SSN> on file"),
    ("SSN 000-24-1001 on file", "SSN 000-24-1001 on file"),  # area 000 is never issued
    ("sort code 20-00-00, account number 12345678", "sort code <SORT_CODE>, account number <ACCOUNT>"),
    ("login from 192.168.1.20 and 2001:db8::8a2e:370:7334", "login from <IP> and <IP>"),
    ("version 1.2.3.4.5 shipped", "version 1.2.3.4.5 shipped"),
    ("born on 12 March 1984, settled on 2024-03-12", "born on <DOB>, settled on 2024-03-12"),
    ("Dear Mr. O'Brien, Jane called; Hans-Jürgen Müller signed.", "Dear Mr. <PERSON>, <PERSON> called; <PERSON> signed."),
    ("Morgan Stanley and Wells Fargo rose in May; Chase cut fees.", "Morgan Stanley and Wells Fargo rose in May; Chase cut fees."),
    ("The Loan Agreement with the Borrower in San Diego", "The Loan Agreement with the Borrower in San Diego"),
    ("Invoice INV-2024-004512 for $1,234,567.89; ISIN US0378331005; $AAPL +3%",
     "Invoice INV-2024-004512 for $1,234,567.89; ISIN US0378331005; $AAPL +3%"),
])
def test_each_type_and_its_near_misses(text: str, expected: str) -> None:
    assert mask(text, CFG) == expected


def test_types_can_be_chosen() -> None:
    only_cards = PrivacyConfig(types=["CARD"])
    assert mask("Jane paid with 4111 1111 1111 1111", only_cards) == "Jane paid with <CARD>"


def test_pseudonyms_are_consistent_keyed_and_need_a_secret(monkeypatch) -> None:
    cfg = PrivacyConfig(mode="pseudonym")
    monkeypatch.delenv(cfg.secret_env, raising=False)
    with pytest.raises(ConfigError, match="FINTUNE_PRIVACY_SECRET"):
        mask("no personal data here", cfg)
    monkeypatch.setenv(cfg.secret_env, "s3cret")
    first = mask("card 4111 1111 1111 1111, again 4111-1111-1111-1111, other 5500 0000 0000 0004", cfg)
    tokens = first.replace(",", "").split()
    assert tokens[1] == tokens[3] != tokens[5] and tokens[1].startswith("<CARD_")
    monkeypatch.setenv(cfg.secret_env, "another")
    assert mask("card 4111 1111 1111 1111", cfg).split()[1] != tokens[1]


def test_corpus_targets() -> None:
    """Recall >= 0.99 on structured types and >= 0.90 on names, precision >= 0.95, on a
    Faker-written corpus with near misses (the benchmark runs a larger one)."""
    results = score(corpus(per_type=60, near_misses=200, seed=7), lambda text: detect(text, CFG))
    for kind, row in results.items():
        assert row["precision"] >= 0.95, (kind, row)
        assert row["recall"] >= (0.90 if kind == "PERSON" else 0.99), (kind, row)


def test_training_data_and_its_report_are_masked(tmp_path) -> None:
    rows = [{"text": "Jane Smith says card 4111 1111 1111 1111 was charged twice", "label": "negative"},
            {"text": "refund to IBAN GB29 NWBK 6016 1331 9268 19 arrived", "label": "positive"}] * 10
    rows += [{"text": f"acme beats quarter {i}", "label": "positive" if i % 2 else "negative"} for i in range(40)]
    path = tmp_path / "train.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    cfg = DataConfig(train=str(path), text_column="text", label_column="label", privacy={"types": list(PII_TYPES)},
                     clean={"drop_duplicates": False, "remove_overlap": False})
    data = prepare_data(cfg, "classification", seed=0)
    texts = data.train.texts + data.validation.texts + (data.test.texts if data.test else [])
    assert not any("4111" in t or "Smith" in t or "GB29" in t for t in texts)
    privacy = data.report["privacy"]
    assert privacy["counts"] == {"IBAN": 10, "CARD": 10, "PERSON": 10} and privacy["rows_masked"] == 20
    assert all("<" in e and "4111" not in e for e in privacy["examples"])
    json.dumps(data.report)  # the report stays JSON


def test_masking_is_off_for_table_rows_unless_asked() -> None:
    from fintune.data.columns import frame_to_texts

    frame = pd.DataFrame({"note": ["Jane Smith paid"], "amount": [5]})
    rows = DataConfig(train="x.csv", feature_columns=["note", "amount"])
    assert "Jane Smith" in frame_to_texts(frame, rows, "f")[0]
    asked = rows.model_copy(update={"privacy": PrivacyConfig(mask=True, types=["PERSON"])})
    assert "<PERSON>" in frame_to_texts(frame, asked, "f")[0]
    text = DataConfig(train="x.csv", text_column="note", privacy={"mask": False})
    assert frame_to_texts(frame, text, "f") == ["Jane Smith paid"]


def test_the_default_types_leave_company_names_alone() -> None:
    text = "Moody's warns on Harley-Davidson; Stifel Nicolaus cuts Novo Nordisk, card 4111 1111 1111 1111"
    assert mask(text, PrivacyConfig()) == "Moody's warns on Harley-Davidson; Stifel Nicolaus cuts Novo Nordisk, card <CARD>"
    assert set(PrivacyConfig().types) == set(DEFAULT_PII_TYPES) == set(PII_TYPES) - {"PERSON", "PHONE"}
