"""Logistic or ridge regression on the encoded features (``model.kind: linear``): served as
it is, explained by occlusion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fintune.data.features import FeatureEncoder
from fintune.models.linear import LinearModel
from fintune.models.metadata import RunMeta
from fintune.models.predictor import OnBatch, Predictor, register_predictor


@register_predictor("linear")
class LinearPredictor(Predictor):
    """A linear model over the feature encoder's rows (standardized numbers, one-hot categories)."""

    onnx_export = "a linear model (model.kind: linear) is a matrix product; serve the run as it is, without ONNX"
    explanation = "occlusion"
    reads_features = True
    reads_text = False
    binned_features = False  # the baseline a risk team fits: standardized values and one-hot categories

    @classmethod
    def _from_folder(cls, folder: Path, meta: RunMeta, features: FeatureEncoder | None, precision: str,
                     threads: int | None) -> Predictor:
        return cls(LinearModel.load(folder), None, meta, None, features)

    def _save_model(self, folder: Path) -> None:
        self.model.save(folder)

    def _raw_scores(self, encoded: dict[str, Any], batch_size: int, on_batch: OnBatch,
                    with_vectors: bool) -> tuple[np.ndarray, np.ndarray | None]:
        out = self.model.outputs(encoded["features"])
        vectors = np.asarray(encoded["features"], dtype=np.float32) if with_vectors else None
        if on_batch:
            on_batch(len(out))
        return out, vectors
