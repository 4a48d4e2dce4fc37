"""Reading tagged sentences: CoNLL and JSONL, validation errors, schemes, splits, subword rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from fintune.config import DataConfig
from fintune.data import Examples
from fintune.data.load import read_table
from fintune.errors import DataError
from fintune.tagging.data import load_tagged, prepare_tagged
from fintune.tagging.model import TagInputs, chunk_words
from tests.tagging.conftest import tagged_sentences, write_conll, write_jsonl


def data_config(path: Path, **kwargs) -> DataConfig:
    return DataConfig(train=str(path), tokens_column="tokens", label_column="tags", **kwargs)


def test_conll_reads_sentences_and_skips_docstart(tmp_path: Path) -> None:
    path = write_conll(tmp_path / "ner.conll", [(["Acme", "Corp", "lends"], ["I-ORG", "I-ORG", "O"]),
                                                 (["Hooli"], ["I-LOC"])])
    frame = read_table(str(path), "auto")
    assert frame["tokens"].tolist() == [["Acme", "Corp", "lends"], ["Hooli"]]
    assert frame["tags"].tolist() == [["I-ORG", "I-ORG", "O"], ["I-LOC"]]
    assert frame["line"].tolist() == [3, 7]  # the first line of each sentence, for messages


def test_conll_one_column_line_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("Acme I-ORG\nlends\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 2: 'lends' has one column"):
        read_table(str(path), "conll")


@pytest.mark.parametrize(("record", "message"), [
    ({"tokens": ["a", "b"], "tags": ["O"]}, "2 words and 1 tags"),
    ({"tokens": ["a"], "tags": ["ORG"]}, "tag 'ORG' is not O or PREFIX-TYPE"),
    ({"tokens": "a b", "tags": ["O", "O"]}, "expected a list of strings"),
    ({"words": ["a"], "tags": ["O"]}, "expected a list of strings, got float 'nan'"),  # no words in row 2
])
def test_bad_sentences_name_the_row(tmp_path: Path, record: dict, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"tokens": ["ok"], "tags": ["O"]}) + "\n" + json.dumps(record) + "\n")
    with pytest.raises(DataError, match=message) as err:
        load_tagged(str(path), data_config(path))
    assert "row 2" in str(err.value)


def test_missing_tokens_column_names_the_key(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "s.jsonl", [(["a"], ["O"])])
    with pytest.raises(DataError, match="tokens column 'words' .*data.tokens_column"):
        load_tagged(str(path), DataConfig(train=str(path), tokens_column="words", label_column="tags"))


def test_cleaning_drops_empty_words(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "s.jsonl", [(["Acme", "\u200b", " ", "Corp"], ["B-ORG", "O", "O", "I-ORG"])])
    examples, dropped = load_tagged(str(path), data_config(path))
    assert examples.tokens == [["Acme", "\u200b", "Corp"]] or examples.tokens == [["Acme", "Corp"]]
    assert dropped >= 1


def test_prepare_converts_scheme_dedups_and_carves(tmp_path: Path) -> None:
    sentences = tagged_sentences(100, seed=3)
    train = write_jsonl(tmp_path / "train.jsonl", sentences + sentences[:5])  # five repeated sentences
    test = write_jsonl(tmp_path / "test.jsonl", sentences[:3] + tagged_sentences(20, seed=9))
    data = prepare_tagged(data_config(train, test=str(test), tag_scheme="bioes"), seed=1)
    assert data.scheme == "bioes" and "S-ORG" in data.tags and "E-ORG" in data.tags
    assert all(t[0] in "BIESO" for seq in data.train.labels for t in seq)
    assert data.report["duplicate_sentences_removed"]["train"] >= 5
    assert data.report["duplicate_sentences_removed"]["test"] >= 3  # test sentences also in training
    texts = set(data.train.texts)
    assert not texts & set(data.validation.texts) and not texts & set(data.test.texts)
    assert data.report["splits"]["validation"]["sentences"] == len(data.validation)


def test_a_test_file_all_in_training_is_an_error(tmp_path: Path) -> None:
    sentences = tagged_sentences(40)
    train = write_jsonl(tmp_path / "train.jsonl", sentences)
    test = write_jsonl(tmp_path / "test.jsonl", sentences[:3])
    with pytest.raises(DataError, match="no sentence is left.*remove_overlap"):
        prepare_tagged(data_config(train, test=str(test)), seed=1)


def test_unknown_type_in_test_is_an_error(tmp_path: Path) -> None:
    train = write_jsonl(tmp_path / "train.jsonl", tagged_sentences(40))
    test = write_jsonl(tmp_path / "test.jsonl", [(["Bob"], ["B-PER"])])
    with pytest.raises(DataError, match="entity types PER do not occur in the training"):
        prepare_tagged(data_config(train, test=str(test)), seed=1)


def test_no_entities_is_an_error(tmp_path: Path) -> None:
    train = write_jsonl(tmp_path / "train.jsonl", [([w, "b"], ["O", "O"]) for w in "cdefgh"])
    with pytest.raises(DataError, match="no entity"):
        prepare_tagged(data_config(train, split={"method": "random", "validation_size": 0.2, "test_size": 0.2}),
                       seed=1)


@pytest.mark.parametrize(("lengths", "budget", "chunks"), [
    ([1, 1, 1], 5, [(0, 3)]),
    ([2, 2, 2], 4, [(0, 2), (2, 3)]),
    ([1, 9, 1], 4, [(0, 1), (1, 2), (2, 3)]),  # a word longer than the budget stands alone
])
def test_chunk_words(lengths: list[int], budget: int, chunks: list[tuple[int, int]]) -> None:
    assert chunk_words(lengths, budget) == chunks


def test_first_subword_carries_the_tag_and_long_sentences_are_chunked(tiny_bert: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    tags = {"O": 0, "B-ORG": 1, "I-ORG": 2}
    words = ["acme", "xq", "bank", "beats"]  # "xq" is not in the vocabulary: [UNK]
    examples = Examples([" ".join(words)], None, None, "t", parts={"tokens": [words]})
    examples.labels = __import__("numpy").array([["B-ORG", "O", "I-ORG", "O"]], dtype=object)
    enc = TagInputs(tokenizer, 32, tags)(examples)
    ids = enc["input_ids"][0]
    assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
    assert [tokenizer.convert_ids_to_tokens(ids[p]) for p in enc["word_starts"][0]] == ["acme", "[UNK]", "bank",
                                                                                         "beats"]
    assert enc["tag_ids"][0] == [1, 0, 2, 0]
    long = Examples(["x"], None, None, "t", parts={"tokens": [["acme"] * 20]})
    chunks = TagInputs(tokenizer, 8, tags)(long)  # 6 words fit between [CLS] and [SEP]
    assert [len(s) for s in chunks["word_starts"]] == [6, 6, 6, 2]
    assert chunks["origin"] == [(0, 0), (0, 6), (0, 12), (0, 18)]
    assert all(len(ids) <= 8 for ids in chunks["input_ids"])


@pytest.mark.parametrize(("raw", "message"), [
    ({"task": "token_classification", "data": {"train": "x.jsonl", "text_column": "text"}},
     "set data.tokens_column"),
    ({"task": "token_classification", "strategy": {"name": "prompt"},
      "data": {"train": "x.jsonl", "tokens_column": "tokens"}}, "strategy full, freeze, gradual, lora"),
    ({"task": "classification", "model": {"crf": True}, "data": {"train": "x.csv", "text_column": "t"}},
     "model.lstm_hidden and model.feature_crf are for task token_classification"),
    ({"task": "token_classification", "data": {"train": "x.jsonl", "tokens_column": "tokens",
                                               "privacy": {"mask": True}}}, "data.privacy.mask"),
])
def test_tagging_config_errors(raw: dict, message: str) -> None:
    from fintune.config import validate_config
    from fintune.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        validate_config(raw)


@pytest.mark.parametrize(("word", "shape"), [("acme", "lower"), ("Acme", "title"), ("ACME", "upper"), ("G", "initial"),
                                             ("iPhone", "mixed"), ("10-K", "digits"), ("),", "other")])
def test_word_shapes(word: str, shape: str) -> None:
    from fintune.tagging.schemes import SHAPES, word_shape

    assert SHAPES[word_shape(word)] == shape


def test_data_check_reports_tagged_sentences(tmp_path: Path) -> None:
    from fintune import api
    from fintune.config import validate_config

    train = write_conll(tmp_path / "train.conll", tagged_sentences(60, seed=4))
    cfg = validate_config({"output_dir": str(tmp_path / "run"), "task": "token_classification",
                           "data": {"train": str(train), "tokens_column": "tokens", "label_column": "tags"}})
    report = api.data_check(cfg)
    assert report["scheme"] == "bio" and report["splits"]["train"]["entities"]["ORG"] > 0
    assert json.loads((tmp_path / "run" / "data_check.json").read_text())["task"] == "token_classification"


def test_document_split_holds_out_whole_documents(tmp_path) -> None:
    from fintune.config import validate_config
    from fintune.data.load import parse_conll
    from fintune.tagging.data import prepare_tagged
    from tests.tagging.conftest import tagged_sentences

    lines = []
    for doc in range(5):
        lines += ["-DOCSTART- -X- O O", ""]
        for tokens, tags in tagged_sentences(20, seed=doc):
            lines += [f"{t} NN - {g}" for t, g in zip(tokens, tags)] + [""]
    path = tmp_path / "docs.conll"
    path.write_text("\n".join(lines), encoding="utf-8")
    assert parse_conll(path.read_text(), str(path))["document"].tolist() == sorted([d for d in range(5)] * 20)
    cfg = validate_config({"task": "token_classification", "data": {
        "train": str(path), "format": "conll", "tokens_column": "tokens", "label_column": "tags",
        "clean": {"drop_duplicates": False, "remove_overlap": False},
        "split": {"method": "document", "validation_size": 0.2, "test_size": 0.2}}})
    data = prepare_tagged(cfg.data, cfg.seed)
    held = [set(data.validation.documents), set(data.test.documents)]
    assert [len(h) for h in held] == [1, 1] and held[0] != held[1]
    assert not (set(data.train.documents) & (held[0] | held[1]))  # no document both trains and evaluates
    assert len(data.train) + len(data.validation) + len(data.test) == 100
    with pytest.raises(Exception, match="holds out whole documents"):
        validate_config({"data": {"train": "x.csv", "text_column": "t", "split": {"method": "document"}}})
