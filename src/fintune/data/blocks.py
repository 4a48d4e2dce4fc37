"""Packed token blocks on disk: a corpus tokenized once into fixed-width blocks of
``max_length`` tokens, read back a batch at a time.

Texts are joined into one token stream (an encoder's separator or a causal LM's end of
sequence between texts) and cut into blocks, so long documents fill whole blocks and short
tweets are not padded. Each block file holds int32 token ids and a uint8 flag per token
(1 where a word starts, for whole-word masking); rows are read with ``pread``, so memory
does not grow with the corpus.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

TOKENIZE_BATCH = 256  # texts per tokenizer call


@dataclass(frozen=True)
class BlockLayout:
    """How blocks are framed: an encoder's [CLS] ... [SEP] around each block, or none (causal)."""

    width: int
    first: int | None  # token that opens every block (encoders: CLS)
    last: int | None  # token that closes every block (encoders: SEP)
    between: int | None  # token between texts (SEP, or a causal LM's EOS)

    @property
    def content(self) -> int:
        return self.width - (self.first is not None) - (self.last is not None)

    @classmethod
    def for_tokenizer(cls, tokenizer: Any, width: int, causal: bool) -> BlockLayout:
        if causal:
            return cls(width, None, None, tokenizer.eos_token_id)
        first = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
        last = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
        return cls(width, first, last, last)


class BlockWriter:
    """Appends texts to a block file; :meth:`close` writes the last, shorter block and the index."""

    def __init__(self, path: Path, layout: BlockLayout) -> None:
        self.path, self.layout = path, layout
        self._ids = open(path.with_suffix(".ids"), "wb")
        self._words = open(path.with_suffix(".words"), "wb")
        self._buf_ids: list[int] = []
        self._buf_words: list[int] = []
        self.lengths: list[int] = []
        self.tokens = 0  # real tokens written, framing included

    def add(self, ids: list[int], word_starts: list[int]) -> None:
        if self._buf_ids and self.layout.between is not None:
            self._buf_ids.append(self.layout.between)
            self._buf_words.append(0)
        self._buf_ids += ids
        self._buf_words += word_starts
        content = self.layout.content
        while len(self._buf_ids) >= content:
            self._flush(self._buf_ids[:content], self._buf_words[:content])
            del self._buf_ids[:content], self._buf_words[:content]

    def _flush(self, ids: list[int], words: list[int]) -> None:
        lay = self.layout
        row_ids = ([lay.first] if lay.first is not None else []) + ids + ([lay.last] if lay.last is not None else [])
        row_words = ([0] if lay.first is not None else []) + words + ([0] if lay.last is not None else [])
        n = len(row_ids)
        pad = lay.width - n
        self._ids.write(np.asarray(row_ids + [0] * pad, dtype=np.int32).tobytes())
        self._words.write(np.asarray(row_words + [0] * pad, dtype=np.uint8).tobytes())
        self.lengths.append(n)
        self.tokens += n

    def close(self) -> BlockStore:
        if self._buf_ids:
            self._flush(self._buf_ids, self._buf_words)
            self._buf_ids, self._buf_words = [], []
        self._ids.close()
        self._words.close()
        np.save(self.path.with_suffix(".lengths.npy"), np.asarray(self.lengths, dtype=np.int32))
        self.path.with_suffix(".json").write_text(json.dumps({"width": self.layout.width, "blocks": len(self.lengths),
                                                              "tokens": self.tokens}), encoding="utf-8")
        return BlockStore(self.path)


class BlockStore:
    """A block file read a row at a time: ``store[i]`` is block i's token ids, ``store.words(i)``
    its word-start flags; ``lengths`` the real tokens per block."""

    def __init__(self, path: Path) -> None:
        self.path = path
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        self.width, self.tokens = int(meta["width"]), int(meta["tokens"])
        self.lengths = np.load(path.with_suffix(".lengths.npy"))
        self._fd_ids = os.open(path.with_suffix(".ids"), os.O_RDONLY)
        self._fd_words = os.open(path.with_suffix(".words"), os.O_RDONLY)

    @staticmethod
    def exists(path: Path) -> bool:
        return path.with_suffix(".json").is_file()

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> np.ndarray:
        n = int(self.lengths[i])
        return np.frombuffer(os.pread(self._fd_ids, n * 4, int(i) * self.width * 4), dtype=np.int32)

    def words(self, i: int) -> np.ndarray:
        n = int(self.lengths[i])
        return np.frombuffer(os.pread(self._fd_words, n, int(i) * self.width), dtype=np.uint8)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def close(self) -> None:
        for fd in (self._fd_ids, self._fd_words):
            try:
                os.close(fd)
            except OSError:
                pass

    def __del__(self) -> None:
        self.close()


def word_starts(encoding: Any, index: int, n: int) -> list[int]:
    """1 where a token starts a word. Fast tokenizers know the words; without them every token
    counts as a word (whole-word masking then masks single tokens)."""
    try:
        words = encoding.word_ids(index)
    except (ValueError, AttributeError):
        return [1] * n
    starts, previous = [], None
    for w in words:
        starts.append(int(w is None or w != previous))
        previous = w
    return starts


def pack(texts: Iterable[str], tokenizer: Any, writers: tuple[BlockWriter, BlockWriter],
         held_out: Any) -> None:
    """Tokenize ``texts`` in batches into the training or held-out writer (``held_out(text)``)."""
    batch: list[str] = []

    def flush() -> None:
        encoding = tokenizer(batch, add_special_tokens=False, truncation=False, verbose=False)
        for i, (text, ids) in enumerate(zip(batch, encoding["input_ids"])):
            if ids:
                writers[1 if held_out(text) else 0].add(list(ids), word_starts(encoding, i, len(ids)))
        batch.clear()

    for text in texts:
        batch.append(text)
        if len(batch) >= TOKENIZE_BATCH:
            flush()
    if batch:
        flush()
