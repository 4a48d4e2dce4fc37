"""Masking precision on real financial text, from a hand-labeled sample of detections.

tests/data/fixtures/masking_labels.json holds, for 309 detections of every detector on the first
3,000 TFNS training tweets and the SEC filings file FIN5, where each one is and whether it is
really personal data of its type, labeled by hand. The texts are read from ../shared/data (the
test skips without it); only positions and a hash of each span are kept in the repository.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest

from fintune.config import DEFAULT_PII_TYPES, PII_TYPES, PrivacyConfig
from fintune.data.load import read_table
from fintune.data.privacy import detect

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
LABELS = json.loads((Path(__file__).parent / "fixtures" / "masking_labels.json").read_text())["detections"]
MIN_PRECISION = 0.95


def _texts(file: str) -> list[str]:
    path = SHARED / file
    if file.endswith(".csv"):
        return pd.read_csv(path)["text"].tolist()
    return [" ".join(tokens) for tokens in read_table(str(path), "conll")["tokens"]]


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/data (the real financial text)")
def test_default_types_are_precise_on_financial_text_and_the_others_are_off() -> None:
    everything = PrivacyConfig(types=list(PII_TYPES))
    labels = {(d["file"], d["row"], d["type"], d["start"], d["end"]): d for d in LABELS}
    assert len(labels) >= 300
    texts = {file: _texts(file) for file in {d["file"] for d in LABELS}}
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # type -> [correct, detections]
    for (file, row, kind, start, end), label in labels.items():
        text = texts[file][row - 1]
        assert hashlib.sha256(text[start:end].encode()).hexdigest()[:16] == label["span_sha256"], (file, row)
        found = {(s.kind, s.start, s.end) for s in detect(text, everything)}
        assert (kind, start, end) in found, (file, row, kind)  # the detectors still find what was labeled
        counts[kind][0] += int(label["correct"])
        counts[kind][1] += 1
    precision = {kind: correct / total for kind, (correct, total) in counts.items()}
    for kind in DEFAULT_PII_TYPES:
        assert precision.get(kind, 1.0) >= MIN_PRECISION, (kind, precision)  # no detection: nothing wrong
    for kind, value in precision.items():
        if value < MIN_PRECISION:
            assert kind not in DEFAULT_PII_TYPES, (kind, value)
    assert precision["PERSON"] < 0.5  # what the labels showed: mostly companies, places, roles


def test_the_labeled_sample_is_well_formed() -> None:
    assert len(LABELS) >= 300 and {d["type"] for d in LABELS} <= set(PII_TYPES)
    assert all(isinstance(d["correct"], bool) and d["end"] > d["start"] for d in LABELS)
