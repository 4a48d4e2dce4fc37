"""Tag schemes, spans, conversion and word offsets; entity scores against seqeval."""

from __future__ import annotations

import random

import pytest

from fintune.tagging.metrics import entity_scores
from fintune.tagging.schemes import (
    allowed_transitions, convert, detect_scheme, parse_tag, spans, tag_set, tags_from_spans, words,
)

SPAN_CASES = [
    # (tags, spans)
    (["I-ORG", "I-ORG", "O", "I-PER"], [("ORG", 0, 2), ("PER", 3, 4)]),  # IO
    (["B-ORG", "I-ORG", "B-ORG", "O"], [("ORG", 0, 2), ("ORG", 2, 3)]),  # BIO, adjacent entities
    (["O", "I-LOC", "I-LOC"], [("LOC", 1, 3)]),  # BIO with a stray I-: starts an entity (conlleval)
    (["B-ORG", "I-PER"], [("ORG", 0, 1), ("PER", 1, 2)]),  # the type changes: a new entity
    (["S-PER", "B-ORG", "I-ORG", "E-ORG", "O"], [("PER", 0, 1), ("ORG", 1, 4)]),  # BIOES
    (["B-ORG", "E-ORG", "E-ORG"], [("ORG", 0, 2), ("ORG", 2, 3)]),
    (["O", "O"], []),
]


@pytest.mark.parametrize(("tags", "expected"), SPAN_CASES)
def test_spans(tags: list[str], expected: list[tuple[str, int, int]]) -> None:
    assert spans(tags) == expected


@pytest.mark.parametrize(("tags", "scheme"), [(["O", "I-ORG"], "io"), (["B-ORG", "I-ORG"], "bio"),
                                              (["S-ORG", "O"], "bioes"), (["O"], "io")])
def test_detect_scheme(tags: list[str], scheme: str) -> None:
    assert detect_scheme([tags]) == scheme


def test_convert_keeps_entities_and_round_trips() -> None:
    bio = ["B-ORG", "I-ORG", "O", "B-PER", "B-PER", "I-PER"]
    bioes = convert(bio, "bioes")
    assert bioes == ["B-ORG", "E-ORG", "O", "S-PER", "B-PER", "E-PER"]
    assert convert(bioes, "bio") == bio
    # IO cannot tell the two adjacent persons apart: converting back joins them.
    assert convert(convert(bio, "io"), "bio") == ["B-ORG", "I-ORG", "O", "B-PER", "I-PER", "I-PER"]
    assert tags_from_spans([("LOC", 1, 2)], 3, "bio") == ["O", "B-LOC", "O"]


@pytest.mark.parametrize("bad", ["ORG", "X-ORG", "B-", "b-org"])
def test_bad_tags_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="PREFIX-TYPE"):
        parse_tag(bad)


def test_transitions_forbid_what_the_scheme_forbids() -> None:
    tags = tag_set(["ORG", "PER"], "bio")
    assert tags == ["O", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    allowed = {(tags[i], tags[j]) for i, j in allowed_transitions(tags, "bio")}
    assert ("O", "I-ORG") not in allowed and ("B-PER", "I-ORG") not in allowed
    assert {("B-ORG", "I-ORG"), ("I-ORG", "I-ORG"), ("I-ORG", "B-ORG"), ("O", "B-PER")} <= allowed
    io = tag_set(["ORG"], "io")
    assert len(allowed_transitions(io, "io")) == len(io) ** 2


def test_words_carry_character_offsets() -> None:
    text = "Deutsche Bank AG (\"Bank\"), Frankfurt; Inc. 3,000"
    found = words(text)
    assert [w for w, _, _ in found][:6] == ["Deutsche", "Bank", "AG", "(\"", "Bank", "\"),"]
    assert all(text[a:b] == w for w, a, b in found)


def test_entity_scores_match_seqeval() -> None:
    seqeval = pytest.importorskip("seqeval.metrics")
    rng = random.Random(0)
    tags = ["O", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    gold = [[rng.choice(tags) for _ in range(rng.randint(1, 12))] for _ in range(300)]
    pred = [[t if rng.random() < 0.7 else rng.choice(tags) for t in sent] for sent in gold]
    ours = entity_scores(gold, pred)
    assert ours["f1"] == pytest.approx(seqeval.f1_score(gold, pred))
    assert ours["precision"] == pytest.approx(seqeval.precision_score(gold, pred))
    assert ours["recall"] == pytest.approx(seqeval.recall_score(gold, pred))
    report = seqeval.classification_report(gold, pred, output_dict=True)
    for kind in ("ORG", "PER"):
        assert ours["per_type"][kind]["f1"] == pytest.approx(report[kind]["f1-score"])
        assert ours["per_type"][kind]["support"] == report[kind]["support"]


def test_entity_scores_by_hand() -> None:
    gold = [["B-ORG", "I-ORG", "O", "B-PER"]]
    pred = [["B-ORG", "O", "O", "B-PER"]]  # the ORG span is cut short: not a match
    scores = entity_scores(gold, pred)
    assert scores["precision"] == 0.5 and scores["recall"] == 0.5
    assert scores["per_type"]["ORG"]["f1"] == 0.0 and scores["per_type"]["PER"]["f1"] == 1.0
    assert scores["word_accuracy"] == 0.75
