"""Tagged sentences: read, validate, clean, convert the tag scheme, split, report.

Input is a table with one sentence per row: a column of words (``data.tokens_column``)
and a column of tags (``data.label_column``), as JSONL lists or as read from a CoNLL file
(columns ``tokens`` and ``tags``). Each sentence becomes one :class:`Examples` row whose
``tokens`` hold the words and whose ``labels`` hold the tags in the training scheme.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fintune.config import DataConfig
from fintune.data import Examples
from fintune.data.clean import clean_text, is_missing
from fintune.data.columns import ROW_NOTE, check_columns, load_table
from fintune.errors import DataError
from fintune.tagging.schemes import OUTSIDE, Scheme, convert, detect_scheme, parse_tag, spans, tag_set


@dataclass
class TaggedData:
    """The splits of a token_classification run and what the model predicts."""

    train: Examples
    validation: Examples
    test: Examples | None
    scheme: Scheme
    tags: list[str]  # the model's id2label: O, then each type's tags in the scheme
    report: dict[str, Any]


def prepare_tagged(cfg: DataConfig, seed: int) -> TaggedData:
    """Read the files named in ``cfg``, convert tags to ``cfg.tag_scheme`` (default: the
    training file's), and carve validation/test sentences out of the training file when
    no file is given (at random: sentences have no label to stratify on)."""
    raw: dict[str, Examples] = {}
    dropped = 0
    for split, path in (("train", cfg.train), ("validation", cfg.validation), ("test", cfg.test)):
        if path is not None:
            raw[split], removed = load_tagged(path, cfg)
            dropped += removed
    scheme: Scheme = cfg.tag_scheme or detect_scheme(list(raw["train"].labels))
    for split, examples in raw.items():
        examples.labels = _as_tag_array([convert(t, scheme) for t in examples.labels])
    duplicates = _drop_duplicates(raw, cfg.clean.drop_duplicates, cfg.clean.remove_overlap)
    train, validation, test = _carve(raw, cfg, seed)
    types = sorted({kind for seq in train.labels for kind, _, _ in spans(seq)})
    if not types:
        raise DataError("the training sentences hold no entity (every tag is O); check data.label_column",
                        file=cfg.train, column=cfg.label_column)
    tags = tag_set(types, scheme)
    for split in (validation, test):
        if split is not None:
            _check_known_types(split, types)
    splits = {"train": train, "validation": validation, "test": test}
    report = tagging_report(splits, scheme, dropped, duplicates)
    return TaggedData(train, validation, test, scheme, tags, report)


def load_tagged(path: str, cfg: DataConfig, require_tags: bool = True) -> tuple[Examples, int]:
    """One file's sentences as examples (tags as in the file), and how many empty words were
    dropped by cleaning. Without ``require_tags`` a file without the tag column is read for
    prediction (labels None)."""
    return tagged_examples(load_table(path, cfg), cfg, path, require_tags)


def tagged_examples(table: pd.DataFrame, cfg: DataConfig, path: str,
                    require_tags: bool = True) -> tuple[Examples, int]:
    """:func:`load_tagged` on a table already read (``path`` names it in messages)."""
    assert cfg.tokens_column is not None
    has_tags = require_tags or cfg.label_column in table.columns
    check_columns(table, [(cfg.tokens_column, "tokens")] + ([(cfg.label_column, "label")] if has_tags else []), path)
    sentences, tag_lists, dropped = [], [], 0
    tag_column = table[cfg.label_column].tolist() if has_tags else [None] * len(table)
    for row, words, tags in zip(_rows(table), table[cfg.tokens_column].tolist(), tag_column):
        words = _list_cell(words, path, row, cfg.tokens_column)
        tags = _list_cell(tags, path, row, cfg.label_column) if has_tags else [OUTSIDE] * len(words)
        if len(words) != len(tags):
            raise DataError(f"{len(words)} words and {len(tags)} tags; each word needs one tag {ROW_NOTE}",
                            file=path, row=row, column=cfg.label_column)
        for tag in tags:
            _check_tag(tag, path, row, cfg.label_column)
        kept = [(clean_text(str(w), cfg.clean), t) for w, t in zip(words, tags)]
        # A word that cleaning empties (a zero-width space, say) has no subwords to tag.
        kept = [(w, t) for w, t in kept if w.strip()]
        dropped += len(words) - len(kept)
        if not kept:
            raise DataError(f"a sentence without words {ROW_NOTE}", file=path, row=row, column=cfg.tokens_column)
        sentences.append([w for w, _ in kept])
        tag_lists.append([t for _, t in kept])
    documents = table["document"].to_numpy() if "document" in table.columns else None
    examples = Examples([" ".join(s) for s in sentences], _as_tag_array(tag_lists) if has_tags else None, None,
                        path, rows=np.asarray(_rows(table)), parts={"tokens": sentences, "documents": documents})
    return examples, dropped


def _rows(table: pd.DataFrame) -> list[int]:
    # CoNLL rows are named by their first line in the file; other tables by their row number.
    return table["line"].tolist() if "line" in table.columns else table.index.tolist()


def _list_cell(value: Any, path: str, row: int, column: str) -> list[str]:
    if isinstance(value, np.ndarray):  # Parquet gives arrays
        value = value.tolist()
    if is_missing(value) or not isinstance(value, (list, tuple)):
        raise DataError(f"expected a list of strings, got {type(value).__name__} {str(value)[:60]!r}; write "
                        f'each sentence as lists, e.g. {{"tokens": ["Acme", "Corp"], "tags": ["B-ORG", "I-ORG"]}} '
                        f"{ROW_NOTE}", file=path, row=row, column=column)
    return [str(v) for v in value]


def _check_tag(tag: str, path: str, row: int, column: str) -> None:
    try:
        parse_tag(tag)
    except ValueError as exc:
        raise DataError(f"{exc} (IO, BIO or BIOES, e.g. B-ORG) {ROW_NOTE}", file=path, row=row,
                        column=column) from None


def _as_tag_array(tag_lists: list[list[str]]) -> np.ndarray:
    out = np.empty(len(tag_lists), dtype=object)
    out[:] = tag_lists
    return out


def _drop_duplicates(splits: dict[str, Examples], within_train: bool, overlap: bool) -> dict[str, int]:
    """Drop repeated sentences within the training file (``clean.drop_duplicates``), and
    evaluation sentences that also appear in training (``clean.remove_overlap``):
    boilerplate clauses repeat across loan agreements, and a repeated clause in test would
    be scored on what the model memorized."""
    removed = {}
    seen: set[str] = set()
    for split in ("train", "validation", "test"):
        examples = splits.get(split)
        if examples is None:
            continue
        keep = []
        own: set[str] = set()
        for i, text in enumerate(examples.texts):
            if (overlap and text in seen) or (within_train and text in own):
                continue
            if split == "train":
                own.add(text)
            keep.append(i)
        removed[split] = len(examples) - len(keep)
        splits[split] = examples.take(np.asarray(keep, dtype=int))
        if split == "train":
            seen = own
    return removed


def _carve(splits: dict[str, Examples], cfg: DataConfig, seed: int) -> tuple[Examples, Examples, Examples | None]:
    train = splits["train"]
    if cfg.split.method == "document":
        return _carve_documents(splits, cfg, seed)
    order = np.random.default_rng(seed).permutation(len(train))
    n_val = 0 if "validation" in splits else max(1, round(cfg.split.validation_size * len(train)))
    n_test = 0 if "test" in splits or cfg.split.test_size == 0 else max(1, round(cfg.split.test_size * len(train)))
    if len(train) - n_val - n_test < 1:
        raise DataError(f"{len(train)} training sentences are too few to carve validation and test "
                        "sentences from; add sentences or give data.validation and data.test files", file=cfg.train)
    validation = (splits["validation"] if "validation" in splits
                  else _named(train.take(np.sort(order[:n_val])), "carved validation"))
    test = (splits["test"] if "test" in splits
            else _named(train.take(np.sort(order[n_val:n_val + n_test])), "carved test") if n_test else None)
    for split in (validation, test):
        if split is not None and len(split) == 0:
            raise DataError("no sentence is left: every one also occurs in the training file (removed by "
                            "data.clean.remove_overlap); give other sentences, or turn remove_overlap off",
                            file=split.source)
    rest = train.take(np.sort(order[n_val + n_test:]))
    if cfg.split.max_train_rows is not None and len(rest) > cfg.split.max_train_rows:
        rest = rest.take(np.sort(np.random.default_rng(seed).permutation(len(rest))[:cfg.split.max_train_rows]))
    return rest, validation, test


def _carve_documents(splits: dict[str, Examples], cfg: DataConfig, seed: int
                     ) -> tuple[Examples, Examples, Examples | None]:
    """``data.split.method: document``: validation (and test) are whole documents of the training
    file, never sentences of a document that also trains. Filings repeat their own clauses and
    names, so sentences held out from a training document score like training sentences; a held
    out document scores like a new filing."""
    train = splits["train"]
    if train.documents is None:
        raise DataError("data.split.method 'document' needs documents: CoNLL files mark them with -DOCSTART- "
                        "lines, JSONL/CSV/Parquet rows with a 'document' column", file=train.source)
    names = np.unique(train.documents)
    n_val = 0 if "validation" in splits else max(1, round(cfg.split.validation_size * len(names)))
    n_test = 0 if "test" in splits or cfg.split.test_size == 0 else max(1, round(cfg.split.test_size * len(names)))
    if len(names) - n_val - n_test < 1:
        raise DataError(f"{len(names)} documents are too few to hold out {n_val + n_test} whole ones; give "
                        "data.validation (and data.test) files, or use data.split.method: random", file=train.source)
    order = _held_out_order(train, np.random.default_rng(seed).permutation(names), n_val + n_test)

    def of(chosen: np.ndarray, what: str) -> Examples:
        return _named(train.take(np.flatnonzero(np.isin(train.documents, chosen))), what)
    validation = splits["validation"] if "validation" in splits else of(order[:n_val], "held-out documents")
    test = (splits["test"] if "test" in splits
            else of(order[n_val:n_val + n_test], "held-out test documents") if n_test else None)
    rest = train.take(np.flatnonzero(np.isin(train.documents, order[n_val + n_test:])))
    return rest, validation, test


def _held_out_order(train: Examples, order: np.ndarray, n_held: int) -> np.ndarray:
    """``order`` with the documents to hold out first: in the seeded order, skipping any whose
    removal would leave an entity type with no training sentence (a rare type often sits in
    one filing); an error when no such choice exists."""
    assert train.documents is not None
    types_of = {d: {k for i in np.flatnonzero(train.documents == d) for k, _, _ in spans(train.labels[i])}
                for d in order}
    every = set().union(*types_of.values())
    held: list[Any] = []
    for doc in order:
        if len(held) == n_held:
            break
        kept = set().union(*(types_of[d] for d in order if d != doc and d not in held))
        if kept == every:
            held.append(doc)
    if len(held) < n_held:
        raise DataError(f"no {n_held} documents can be held out without taking every sentence of an entity type "
                        "from training; give data.validation files, or use data.split.method: random",
                        file=train.source)
    return np.array(held + [d for d in order if d not in held], dtype=order.dtype)


def _named(examples: Examples, what: str) -> Examples:
    examples.source = f"{examples.source} [{what}]"
    return examples


def _check_known_types(examples: Examples, types: list[str]) -> None:
    unknown = sorted({k for seq in examples.labels for k, _, _ in spans(seq)} - set(types))
    if unknown:
        raise DataError(f"entity types {', '.join(unknown)} do not occur in the training sentences, so the model "
                        f"cannot learn them; training has: {', '.join(types)}", file=examples.source)


def entity_counts(examples: Examples) -> dict[str, int]:
    """Entities per type in a split."""
    return dict(sorted(Counter(k for seq in examples.labels for k, _, _ in spans(seq)).items()))


def tagging_report(splits: dict[str, Examples | None], scheme: Scheme, dropped_words: int,
                   duplicates: dict[str, int]) -> dict[str, Any]:
    """The data quality report of a token_classification run: sizes, entities per type,
    sentence lengths, what cleaning removed."""
    report: dict[str, Any] = {"task": "token_classification", "scheme": scheme, "splits": {},
                              "empty_words_dropped": dropped_words, "duplicate_sentences_removed": duplicates}
    for name, ex in splits.items():
        if ex is None:
            continue
        lengths = np.array([len(t) for t in ex.tokens or []])
        tagged = sum(sum(t != OUTSIDE for t in seq) for seq in ex.labels)
        report["splits"][name] = {
            "source": ex.source, "sentences": len(ex), "words": int(lengths.sum()),
            "words_per_sentence": {"mean": round(float(lengths.mean()), 1), "max": int(lengths.max())},
            "tagged_words": int(tagged), "entities": entity_counts(ex),
        }
    return report


def print_tagging_report(report: dict[str, Any], console: Any) -> None:
    """The report as a table on the console."""
    from rich.table import Table

    table = Table(title=f"tagged data ({report['scheme'].upper()} tags)")
    for col in ("split", "sentences", "words", "max words", "entities"):
        table.add_column(col)
    for name, s in report["splits"].items():
        table.add_row(name, str(s["sentences"]), str(s["words"]), str(s["words_per_sentence"]["max"]),
                      ", ".join(f"{k} {v}" for k, v in s["entities"].items()))
    console.print(table)
    removed = {k: v for k, v in report["duplicate_sentences_removed"].items() if v}
    if removed or report["empty_words_dropped"]:
        console.print(f"removed: duplicate sentences {removed or 0}, empty words {report['empty_words_dropped']}")
