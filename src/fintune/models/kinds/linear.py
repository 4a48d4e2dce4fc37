"""Logistic or ridge regression on the encoded features (``model.kind: linear``): served as
it is, explained by occlusion."""

from __future__ import annotations

from pathlib import Path

from fintune.data.features import FeatureEncoder
from fintune.models.kinds.gbm import FeatureRowsPredictor
from fintune.models.linear import LinearModel
from fintune.models.metadata import RunMeta
from fintune.models.predictor import Predictor, register_predictor


@register_predictor("linear")
class LinearPredictor(FeatureRowsPredictor):
    """A linear model over the feature encoder's rows (standardized numbers, one-hot categories)."""
    card_origin = ("a scikit-learn linear model (logistic regression for classes) on standardized and one-hot "
                   "encoded feature columns (no pretrained backbone)")
    card_library = "sklearn"

    onnx_export = "a linear model (model.kind: linear) is a matrix product; serve the run as it is, without ONNX"
    binned_features = False  # the baseline a risk team fits: standardized values and one-hot categories

    @classmethod
    def _from_folder(cls, folder: Path, meta: RunMeta, features: FeatureEncoder | None, precision: str,
                     threads: int | None) -> Predictor:
        return cls(LinearModel.load(folder), None, meta, None, features)
