"""The corpus reader: sources of every format, cleaning, the leakage guard, dedup, masking,
held-out split, and block packing."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from fintune.config import validate_pretrain
from fintune.data.blocks import BlockLayout, BlockStore, BlockWriter, pack
from fintune.data.corpus import Corpus, is_held_out, normalized
from fintune.errors import DataError

TEXTS = ["Acme beats estimates and raises guidance for the year",
         "Globex shares plunge after the quarterly loss widens",
         "Initech schedules its annual meeting for shareholders"]


def corpus_cfg(sources: list, **corpus: object):
    return validate_pretrain({"corpus": {"sources": sources, "min_chars": 5, **corpus}}).corpus


def test_every_format_is_read(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text(f"{TEXTS[0]}\n\n{TEXTS[1]}\n", encoding="utf-8")
    (tmp_path / "notes" / "sub").mkdir()
    (tmp_path / "notes" / "sub" / "b.txt").write_text(TEXTS[2], encoding="utf-8")
    pd.DataFrame({"body": TEXTS}).to_csv(tmp_path / "t.csv", index=False)
    pd.DataFrame({"text": TEXTS}).to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    pd.DataFrame({"text": TEXTS}).to_parquet(tmp_path / "t.parquet")
    for source in (str(tmp_path / "notes"), {"path": str(tmp_path / "t.csv"), "text_column": "body"},
                   str(tmp_path / "t.jsonl"), str(tmp_path / "t.parquet")):
        corpus = Corpus(corpus_cfg([source]))
        assert sorted(corpus) == sorted(TEXTS), source
        stats = corpus.stats.sources[0]
        assert stats.texts == 3 and len(stats.sha256) == 64 and stats.bytes > 0


def test_leakage_guard_removes_exact_and_normalized_matches(tmp_path: Path) -> None:
    pd.DataFrame({"text": [*TEXTS, "ACME beats estimates, and raises guidance for the year!", TEXTS[0]]}).to_csv(
        tmp_path / "corpus.csv", index=False)
    pd.DataFrame({"text": [TEXTS[0]], "label": [1]}).to_csv(tmp_path / "valid.csv", index=False)
    corpus = Corpus(corpus_cfg([str(tmp_path / "corpus.csv")], exclude=[str(tmp_path / "valid.csv")]))
    kept = list(corpus)
    assert kept == TEXTS[1:]
    report = corpus.stats.report()
    assert report["leakage_guard"]["excluded_exact"] == 2  # both copies of the validation text
    assert report["leakage_guard"]["excluded_normalized"] == 1  # the one that differs in case and punctuation
    assert report["leakage_guard"]["files"][0]["texts"] == 1


def test_duplicates_short_texts_and_personal_data(tmp_path: Path) -> None:
    rows = [TEXTS[1], TEXTS[1], "hi", "Call me at jane.doe@example.com about the Globex bond deal"]
    pd.DataFrame({"text": rows}).to_csv(tmp_path / "c.csv", index=False)
    corpus = Corpus(corpus_cfg([str(tmp_path / "c.csv")]))
    kept = list(corpus)
    assert kept == [TEXTS[1], "Call me at <EMAIL> about the Globex bond deal"]
    assert corpus.stats.duplicates == 1 and corpus.stats.too_short == 1 and corpus.stats.masked_texts == 1
    off = Corpus(corpus_cfg([str(tmp_path / "c.csv")], privacy={"mask": False}, deduplicate=False))
    assert len(list(off)) == 3 and "jane.doe@example.com" in list(off)[-1]


@pytest.mark.parametrize("problem, message", [
    ("missing", "corpus source not found"), ("column", "has no column 'text'"), ("format", "cannot tell the format"),
    ("empty_folder", "holds no .txt files"),
])
def test_bad_sources_say_what_to_fix(tmp_path: Path, problem: str, message: str) -> None:
    path = tmp_path / "x.csv"
    if problem == "column":
        pd.DataFrame({"body": TEXTS}).to_csv(path, index=False)
    elif problem == "format":
        path = tmp_path / "x.data"
        path.write_text("x", encoding="utf-8")
    elif problem == "empty_folder":
        path = tmp_path / "empty"
        path.mkdir()
    with pytest.raises(DataError, match=message):
        list(Corpus(corpus_cfg([str(path)])))


def test_held_out_split_is_by_text() -> None:
    texts = [f"text number {i}" for i in range(2000)]
    held = [t for t in texts if is_held_out(t, 0.1)]
    assert 140 < len(held) < 260
    assert held == [t for t in texts if is_held_out(t, 0.1)]
    assert not any(is_held_out(t, 0.0) for t in texts)
    assert normalized("Acme, Inc.  BEATS!") == "acme inc beats"


def test_packing_fills_blocks_and_reads_them_back(tmp_path: Path, tiny_bert: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    layout = BlockLayout.for_tokenizer(tokenizer, 8, causal=False)
    writers = (BlockWriter(tmp_path / "train", layout), BlockWriter(tmp_path / "validation", layout))
    texts = ["acme beats", "globex misses the quarter", "initech holds"]
    pack(texts, tokenizer, writers, lambda text: text == "initech holds")
    train, held = (w.close() for w in writers)
    flat = [int(t) for block in train for t in block]
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    # [CLS] acme beats [SEP] globex misses the [SEP] | [CLS] quarter [SEP]
    assert list(train.lengths) == [8, 3] and train[0][0] == cls and train[0][-1] == sep
    content = [t for t in flat if t not in (cls, sep)]
    assert tokenizer.decode(content) == "acme beats globex misses the quarter"
    assert list(train.words(0)) == [0, 1, 1, 0, 1, 1, 1, 0]
    assert len(held) == 1 and tokenizer.decode([int(t) for t in held[0][1:-1]]) == "initech holds"
    meta = json.loads((tmp_path / "train.json").read_text())
    assert meta == {"width": 8, "blocks": 2, "tokens": 11}
    assert BlockStore(tmp_path / "train").tokens == 11
