"""The tagger's predictor (task token_classification): words in, a tag per word and the
entities with character offsets out. Registered as ``tagger``; batch prediction only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from fintune.data import Examples, clean_text
from fintune.data.columns import check_columns
from fintune.errors import FintuneError
from fintune.models.metadata import RunMeta, TaggerMeta
from fintune.models.predictor import OnBatch, Predictor, register_predictor
from fintune.models.reading import adapter_base, aligned
from fintune.tagging.data import tagged_examples
from fintune.tagging.model import TagInputs, TokenTagger, load_tagger, predict_tags, tag_marginals
from fintune.tagging.schemes import Entity, spans, words

NO_SCORES = ("a token_classification run tags words: use FintuneModel.tags or .entities "
             "(`fintune predict` writes the entities of each row)")


@register_predictor("tagger")
class TaggerPredictor(Predictor):
    """A :class:`TokenTagger` with its tag names and word-to-subword alignment."""

    servable = ("the server answers with class probabilities or values, so it serves classification and "
                "regression runs. Generate answers or tag entities in batch with `fintune predict`")
    onnx_export = ("ONNX export covers sentence-level models; export a tagger with --format hf "
                   "(a plain token-classification model, LoRA merged in)")
    has_scores = False

    def __init__(self, model: Any, tokenizer: Any, meta: RunMeta | dict[str, Any],
                 dtype: torch.dtype | None = None, features: Any = None) -> None:
        super().__init__(model, tokenizer, meta, dtype, features)
        self.tag_inputs = TagInputs(tokenizer, self.max_length, {t: i for i, t in enumerate(self.tag_names)},
                                    self.head.case_features)

    @property
    def head(self) -> TaggerMeta:
        """What the tagger adds to its encoder (scheme, CRF, case features, LSTM)."""
        assert self.meta.tagger is not None, "a tagger's metadata holds its head"
        return self.meta.tagger

    @property
    def tag_names(self) -> list[str]:
        assert self.label_names is not None
        return self.label_names

    @classmethod
    def _load_model(cls, folder: Path, meta: RunMeta, tokenizer: Any) -> torch.nn.Module:
        assert meta.tagger is not None and meta.label_names is not None
        return load_tagger(folder, meta.label_names, meta.tagger, adapter_base(folder, meta))

    def _save_model(self, folder: Path) -> None:
        self.model.save(folder)

    def _with_merged(self, merged: torch.nn.Module) -> torch.nn.Module:
        return TokenTagger(merged, self.model.crf, self.model.case, self.model.lstm, self.model.ensemble)

    # ------------------------------------------------------------ tags and entities

    def scores(self, examples: Any, batch_size: int = 64, on_batch: OnBatch = None,
               with_vectors: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        raise FintuneError(NO_SCORES)

    def tags(self, sentences: Examples | list[list[str]], batch_size: int = 32, on_batch: OnBatch = None) -> list[list[str]]:
        """The tag of every word of each sentence (lists of words)."""
        return [[self.tag_names[i] for i in row] for row in self._tag_ids(sentences, batch_size, on_batch)[0]]

    def _tag_ids(self, sentences: Examples | list[list[str]], batch_size: int,
                 on_batch: OnBatch = None) -> tuple[list[list[int]], list[list[float]]]:
        if not isinstance(sentences, Examples):
            sentences = [list(s) for s in sentences]
            sentences = Examples([" ".join(s) for s in sentences], None, None, "input", parts={"tokens": sentences})
        assert sentences.tokens is not None
        # Tags are not read: the gold tags of an evaluation split must not reach the model's input.
        unlabelled = Examples(sentences.texts, None, None, sentences.source, parts={"tokens": sentences.tokens})
        encoded, n_words = self.tag_inputs(unlabelled), [len(t) for t in sentences.tokens]
        ensemble = self.model.ensemble
        if ensemble is None:
            return predict_tags(self.model, encoded, n_words, batch_size, self.tag_inputs.pad_id, self.dtype, on_batch)
        neural = tag_marginals(self.model, encoded, n_words, batch_size, self.tag_inputs.pad_id, self.dtype, on_batch)
        return ensemble.decode(neural, sentences.tokens)

    def entities(self, texts: list[str], batch_size: int = 32, on_batch: OnBatch = None) -> list[list[Entity]]:
        """The entities in each raw text, with character offsets into it."""
        return self._entities(texts, [words(text) for text in texts], batch_size, on_batch)

    def entities_of_tokens(self, sentences: list[list[str]], batch_size: int = 32,
                           on_batch: OnBatch = None) -> list[list[Entity]]:
        """Entities in sentences given as words; offsets point into the words joined by spaces."""
        located = []
        for words_ in sentences:
            starts = np.cumsum([0] + [len(w) + 1 for w in words_[:-1]])
            located.append([(w, int(s), int(s) + len(w)) for w, s in zip(words_, starts)])
        return self._entities([" ".join(s) for s in sentences], located, batch_size, on_batch)

    def _entities(self, texts: list[str], located: list[list[tuple[str, int, int]]], batch_size: int,
                  on_batch: OnBatch) -> list[list[Entity]]:
        # Words are cleaned as training words were; offsets stay those of the raw text.
        clean = self.data_config.clean
        kept = [[(clean_text(w, clean), a, b) for w, a, b in ws] for ws in located]
        kept = [[(w, a, b) for w, a, b in ws if w.strip()] for ws in kept]
        todo = [i for i, ws in enumerate(kept) if ws]  # a text without words has no entities
        ids, probs = self._tag_ids([[w for w, _, _ in kept[i]] for i in todo], batch_size, on_batch)
        out: list[list[Entity]] = [[] for _ in texts]
        for i, row, p in zip(todo, ids, probs):
            ws, tags = kept[i], [self.tag_names[t] for t in row]
            out[i] = [Entity(kind, texts[i][ws[a][1]:ws[b - 1][2]], ws[a][1], ws[b - 1][2], float(np.mean(p[a:b])))
                      for kind, a, b in spans(tags)]
        return out

    def predict(self, data: Any, batch_size: int = 64) -> Any:
        """The entities of each text: a Series on a DataFrame's index (rows with the tokens
        column, or the text column), else a list."""
        if hasattr(data, "to_pandas") and hasattr(data, "column_names"):  # a Hugging Face Dataset
            data = data.to_pandas()
        if isinstance(data, pd.DataFrame):
            rows = self.rows_for_prediction(data, "DataFrame")
            found = (self.entities([str(t) for t in data[rows]], batch_size) if isinstance(rows, str)
                     else self.entities_of_tokens(rows, batch_size))
            return aligned(data, found, "entities")
        if isinstance(data, Examples):
            return self.entities(data.texts, batch_size)
        return aligned(data, self.entities(self.as_examples(data).texts, batch_size), "entities")

    # ------------------------------------------------------------ tables in, columns out

    def rows_for_prediction(self, frame: pd.DataFrame, source: str, first_row: int = 1) -> list[list[str]] | str:
        """Each row's words when the table has the tokens column (all checked now), else the
        name of the raw-text column (``data.text_column``, default ``text``)."""
        cfg = self.data_config
        if cfg.tokens_column in frame.columns:
            check_columns(frame, [(cfg.tokens_column, "tokens")], source)
            return tagged_examples(frame, cfg, source, require_tags=False)[0].tokens or []
        column = cfg.text_column or "text"
        check_columns(frame, [(column, "text")], source)
        return column

    def truncated(self, data: Any) -> np.ndarray | None:
        # A sentence longer than max_length is tagged in consecutive chunks of whole words
        # (TagInputs), so no word goes untagged: nothing is cut.
        return np.zeros(len(data), dtype=bool)

    def truncated_rows(self, rows: Any, start: int, stop: int) -> np.ndarray | None:
        return np.zeros(stop - start, dtype=bool)

    def predict_columns(self, rows: Any, start: int, stop: int, chunk: pd.DataFrame, batch_size: int,
                        on_batch: OnBatch = None) -> dict[str, Any]:
        """An ``entities`` column (type, text, character offsets, score); a list in JSONL, JSON
        text in a CSV cell (the caller serializes lists it cannot write)."""
        found = (self.entities([str(t) for t in chunk[rows].tolist()], batch_size, on_batch) if isinstance(rows, str)
                 else self.entities_of_tokens(rows[start:stop], batch_size, on_batch))
        return {"entities": [[e.as_dict() for e in row] for row in found]}

