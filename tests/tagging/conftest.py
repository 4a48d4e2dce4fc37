"""Synthetic tagged sentences over the tiny BERT's vocabulary: the type follows from the word."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tests.conftest import FILLER, NEGATIVE, POSITIVE

ORGS = ["acme", "globex", "initech", "umbrella"]
LOCS = ["hooli", "stark", "wayne", "tyrell"]


def tagged_sentences(n: int, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    """BIO-tagged sentences: organizations (some two words: "acme bank"), places, filler."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        tokens: list[str] = []
        tags: list[str] = []
        for _ in range(rng.randint(2, 5)):
            roll = rng.random()
            if roll < 0.3:
                tokens.append(rng.choice(ORGS))
                tags.append("B-ORG")
                if rng.random() < 0.4:
                    tokens.append("bank")
                    tags.append("I-ORG")
            elif roll < 0.5:
                tokens.append(rng.choice(LOCS))
                tags.append("B-LOC")
            else:
                word = rng.choice(FILLER + POSITIVE + NEGATIVE)
                if word != "bank":
                    tokens.append(word)
                    tags.append("O")
        if not tokens:
            tokens, tags = ["acme"], ["B-ORG"]
        out.append((tokens, tags))
    return out


def write_jsonl(path: Path, sentences: list[tuple[list[str], list[str]]]) -> Path:
    path.write_text("".join(json.dumps({"tokens": t, "tags": g}) + "\n" for t, g in sentences), encoding="utf-8")
    return path


def write_conll(path: Path, sentences: list[tuple[list[str], list[str]]]) -> Path:
    """CoNLL with POS and chunk columns and a -DOCSTART- line, as the SEC filings files."""
    lines = ["-DOCSTART- -X- O O", ""]
    for tokens, tags in sentences:
        lines += [f"{t} NN - {g}" for t, g in zip(tokens, tags)] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture()
def ner_jsonl(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "ner.jsonl", tagged_sentences(200))


@pytest.fixture()
def make_ner_config(make_config, ner_jsonl: Path):
    """A token_classification config for the tiny BERT; ``sections`` update the defaults."""
    def make(name: str = "ner.yaml", train_file: Path | None = None, **sections: dict) -> Path:
        data = {"train": str(train_file or ner_jsonl), "tokens_column": "tokens", "label_column": "tags",
                "text_column": None, **sections.pop("data", {})}
        return make_config(name, task="token_classification", data=data,
                           train={"epochs": 6, "batch_size": 16, "lr": 5e-3, "checkpoint_every": 0,
                                  "precision": "fp32", "warmup_fraction": 0.1, **sections.pop("train", {})},
                           **sections)
    return make
