"""LightGBM on the encoded features (``model.kind: gbm``): served as it is (no ONNX; it is
native on the CPU already), explained by occlusion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fintune.data.features import FeatureEncoder
from fintune.models.gbm import GBMModel
from fintune.models.metadata import RunMeta
from fintune.models.predictor import OnBatch, Predictor, register_predictor


class FeatureRowsPredictor(Predictor):
    """A model fitted outside the training loop on the encoded feature rows (trees, linear):
    it saves itself, and scores the rows in one call."""

    explanation = "occlusion"
    reads_features = True
    reads_text = False

    def _save_model(self, folder: Path) -> None:
        self.model.save(folder)

    def _raw_scores(self, encoded: dict[str, Any], batch_size: int, on_batch: OnBatch,
                    with_vectors: bool) -> tuple[np.ndarray, np.ndarray | None]:
        out = self.model.outputs(encoded["features"])
        vectors = np.asarray(encoded["features"], dtype=np.float32) if with_vectors else None
        if on_batch:
            on_batch(len(out))
        return out, vectors


@register_predictor("gbm")
class GBMPredictor(FeatureRowsPredictor):
    """Gradient-boosted trees over the feature encoder's rows."""
    card_origin = "a LightGBM gradient-boosted tree model on the encoded feature columns (no pretrained backbone)"
    card_library = "lightgbm"

    onnx_export = ("a LightGBM model (model.kind: gbm) already runs natively on the CPU; "
                   "serve the run as it is, without ONNX")
    binned_features = False  # trees split raw values themselves; bins would only add columns to search

    @classmethod
    def _from_folder(cls, folder: Path, meta: RunMeta, features: FeatureEncoder | None, precision: str,
                     threads: int | None) -> Predictor:
        gbm = GBMModel.load(folder, meta.task, len(meta.label_names or [None]))
        return cls(gbm, None, meta, None, features)
