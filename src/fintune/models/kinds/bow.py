"""A bag-of-words text model (``model.kind: bow``): TF-IDF over words and word pairs (or
character n-grams, ``model.bow.analyzer: char``, for text without spaces), then
logistic regression (ridge for a numeric target) with C chosen by cross-validation
(``model.linear``). The baseline a quant fits first, inside fintune: the same splits, metrics,
calibration, report and server as every other kind. No backbone and no tokenizer; saved as
JSON (the vocabulary, its IDF weights and the coefficients), so loading runs no code."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from fintune.config import BowConfig, LinearConfig
from fintune.data.features import FeatureEncoder
from fintune.models.inference import Processor, RawTexts
from fintune.models.linear import LinearModel
from fintune.models.metadata import RunMeta
from fintune.models.predictor import OnBatch, Predictor, register_predictor

BOW_FILE = "bow.json"


class BowModel:
    """A fitted TF-IDF vocabulary and the linear model over it."""

    def __init__(self, vocabulary: dict[str, int], idf: np.ndarray, linear: LinearModel,
                 counts: BowConfig | None = None) -> None:
        self.vocabulary, self.idf, self.linear = vocabulary, np.asarray(idf, dtype=np.float64), linear
        self.counts = counts or BowConfig()
        self.train_seconds = 0.0

    @staticmethod
    def _vectorizer(counts: BowConfig, vocabulary: dict[str, int] | None = None) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer

        # Damped counts of words (or characters) and their n-grams, the most frequent kept.
        return TfidfVectorizer(analyzer=counts.analyzer, ngram_range=(1, counts.ngram_max), sublinear_tf=True,
                               max_features=counts.max_features, vocabulary=vocabulary)

    @classmethod
    def fit(cls, cfg: LinearConfig, counts: BowConfig, task: str, num_labels: int, texts: list[str], y: np.ndarray,
            seed: int) -> BowModel:
        """Learn the vocabulary on the training texts, then cross-validate C and refit."""
        started = time.perf_counter()
        vectorizer = cls._vectorizer(counts)
        x = vectorizer.fit_transform(texts)
        vocabulary = {term: int(i) for term, i in vectorizer.vocabulary_.items()}
        model = cls(vocabulary, vectorizer.idf_, LinearModel.fit(cfg, task, num_labels, x, y, seed), counts)
        model.train_seconds = time.perf_counter() - started
        return model

    def outputs(self, texts: list[str]) -> np.ndarray:
        """Class probabilities (n, k), or predictions (n,) for regression."""
        vectorizer = self._vectorizer(self.counts, self.vocabulary)
        vectorizer.idf_ = self.idf
        return self.linear.outputs(vectorizer.transform(texts))

    def save(self, folder: Path) -> None:
        self.linear.save(folder)
        record = {"counts": self.counts.model_dump(), "vocabulary": self.vocabulary, "idf": self.idf.tolist()}
        (folder / BOW_FILE).write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> BowModel:
        record = json.loads((folder / BOW_FILE).read_text(encoding="utf-8"))
        return cls(record["vocabulary"], np.asarray(record["idf"]), LinearModel.load(folder),
                   BowConfig.model_validate(record.get("counts") or {}))


@register_predictor("bow")
class BowPredictor(Predictor):
    """Words in, a linear model's answers out."""

    reads_text = False  # words, not a subword tokenizer's ids: nothing to save beside the model
    explanation = None
    onnx_export = "a bag-of-words linear model (model.kind: bow) is a sparse matrix product; serve the run as it is"
    card_origin = "TF-IDF word and word-pair weights with a scikit-learn linear model (no pretrained backbone)"
    card_library = "sklearn"

    @classmethod
    def processors(cls, tokenizer: Any, max_length: int, features: FeatureEncoder | None, prompt: Any,
                   windows: Any) -> tuple[Processor, ...]:
        return (RawTexts(),)

    def uses_backbone(self) -> bool:
        return False

    def _save_model(self, folder: Path) -> None:
        self.model.save(folder)

    @classmethod
    def _from_folder(cls, folder: Path, meta: RunMeta, features: FeatureEncoder | None, precision: str,
                     threads: int | None) -> Predictor:
        return cls(BowModel.load(folder), None, meta, None, features)

    def _raw_scores(self, encoded: dict[str, Any], batch_size: int, on_batch: OnBatch,
                    with_vectors: bool) -> tuple[np.ndarray, np.ndarray | None]:
        out = self.model.outputs(encoded["texts"])
        if on_batch:
            on_batch(len(out))
        return out, None
