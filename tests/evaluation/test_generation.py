"""Metrics of generated answers: SQuAD exact match and token F1, and answers as classes."""

from __future__ import annotations

import json

import pytest

from fintune.evaluation.generation import (
    UNMATCHED, answer_class, generation_metrics, normalize, token_f1, write_generation_evaluation,
)


def test_normalize_drops_case_punctuation_and_articles() -> None:
    assert normalize("  The Positive!  ") == "positive"
    assert normalize("An upgrade, a  rally.") == "upgrade rally"


@pytest.mark.parametrize(("reference", "answer", "expected"), [
    ("net income rose", "net income rose", 1.0),
    ("net income rose", "income rose sharply", 2 * (2 / 3) * (2 / 3) / (4 / 3)),
    ("net income rose", "revenue fell", 0.0),
    ("", "", 1.0),
    ("positive", "", 0.0),
])
def test_token_f1(reference: str, answer: str, expected: float) -> None:
    assert token_f1(reference, answer) == pytest.approx(expected)


@pytest.mark.parametrize(("answer", "expected"), [
    ("positive", "positive"),
    ("Positive.", "positive"),
    ("The sentiment is negative", "negative"),
    ("positive or negative", UNMATCHED),  # two classes named: no answer
    ("bullish", UNMATCHED),
])
def test_answer_class(answer: str, expected: str) -> None:
    assert answer_class(answer, ["negative", "neutral", "positive"]) == expected


def test_closed_answer_sets_are_scored_as_classes() -> None:
    refs = ["positive", "negative", "neutral", "positive"]
    answers = ["positive", "it is negative", "bullish", "Positive"]
    m = generation_metrics(refs, answers)
    assert m["exact_match"] == pytest.approx(0.5) and m["accuracy"] == pytest.approx(0.75)
    assert m["unmatched"] == pytest.approx(0.25) and m["classes"] == ["negative", "neutral", "positive"]
    # neutral is never predicted: F1 0 for it, weighted by its support (1 of 4).
    assert m["weighted_f1"] == pytest.approx(0.75) and m["macro_f1"] == pytest.approx(2 / 3)


def test_open_answers_skip_class_metrics() -> None:
    refs = [f"answer number {i}" for i in range(30)]
    m = generation_metrics(refs, refs)
    assert m["exact_match"] == 1.0 and "weighted_f1" not in m
    with pytest.raises(ValueError, match="30 references but 1 answers"):
        generation_metrics(refs, ["x"])


def test_report_files(tmp_path) -> None:
    m = write_generation_evaluation(tmp_path, ["yes", "no"], ["yes", "maybe | so"], ["q1", "q2"], "test",
                                    instructions=["i1", "i2"], extra={"loss": 0.5})
    assert m["loss"] == 0.5 and json.loads((tmp_path / "metrics.json").read_text())["exact_match"] == 0.5
    lines = [json.loads(x) for x in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert lines[1] == {"instruction": "i2", "input": "q2", "reference": "no", "answer": "maybe | so", "exact": False}
    report = (tmp_path / "report.md").read_text()
    assert "| exact_match | 0.5000 |" in report and "maybe \\| so" in report
