"""An ensemble of fitted models (``model.kind: ensemble``): the weighted mean of its members'
probabilities (or values), each member a saved model of its own kind under ``members/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fintune.data import Examples
from fintune.data.features import FeatureEncoder
from fintune.errors import FintuneError
from fintune.models.metadata import RunMeta
from fintune.models.predictor import OnBatch, Predictor, register_predictor
from fintune.scoring.calibration import apply_temperature
from fintune.tasks import task_of

MEMBERS = "members"


@register_predictor("ensemble")
class EnsemblePredictor(Predictor):
    """Members and weights; scores are ``sum_m w_m * scores_m`` (members' own calibration applied),
    then the ensemble's own temperature."""

    onnx_export = ("an ensemble runs several models of different kinds; serve the run as it is, or export "
                   "a member's folder (model/members/NAME)")
    explanation = "occlusion"
    reads_features = True
    reads_text = False  # members load their own tokenizers
    card_library = None  # each member's own

    def truncated(self, data: Any) -> np.ndarray | None:
        """A row is read in part when any member that reads text cuts it."""
        examples = self.as_examples(data)
        flags = [m.truncated(examples) for m in self.members.values() if m.reads_text]
        flags = [f for f in flags if f is not None]
        return np.logical_or.reduce(flags) if flags else np.zeros(len(examples), dtype=bool)

    def truncated_rows(self, rows: Any, start: int, stop: int) -> np.ndarray | None:
        return self.truncated(rows.subset(start, stop))

    def uses_backbone(self) -> bool:
        return any(member.uses_backbone() for member in self.members.values())

    def card_summary(self) -> str:
        """Each member, what it is and its weight, and how the weights were chosen."""
        assert self.meta.ensemble is not None
        members = "; ".join(f"`{name}` (weight {weight:.2f}): {self.members[name].card_summary()}"
                            for name, weight in self.weights.items())
        return f"a weighted ensemble of {len(self.members)} models, weights by {self.meta.ensemble.method}: {members}"

    def __init__(self, model: Any, tokenizer: Any, meta: RunMeta | dict[str, Any], dtype: Any = None,
                 features: FeatureEncoder | None = None) -> None:
        # Occlusion reads the columns and their training means from an encoder: any member's
        # (they are fitted on the same training rows).
        features = features or next((m.features for m in model.values() if m.features is not None), None)
        super().__init__(model, tokenizer, meta, dtype, features)
        self.members: dict[str, Predictor] = model
        if self.meta.ensemble is None or list(self.meta.ensemble.members) != list(model):
            raise FintuneError("an ensemble's metadata must name its members in order")

    @classmethod
    def _from_folder(cls, folder: Path, meta: RunMeta, features: FeatureEncoder | None, precision: str,
                     threads: int | None) -> Predictor:
        assert meta.ensemble is not None, "an ensemble's metadata holds its members"
        members = {name: Predictor.load(folder / MEMBERS / name, precision, threads) for name in meta.ensemble.members}
        return cls(members, None, meta, None, features)

    def _save_model(self, folder: Path) -> None:
        for name, member in self.members.items():
            member.save(folder / MEMBERS / name)

    @property
    def weights(self) -> dict[str, float]:
        assert self.meta.ensemble is not None
        return dict(zip(self.meta.ensemble.members, self.meta.ensemble.weights))

    def scores(self, examples: Examples | list[str], batch_size: int = 64, on_batch: OnBatch = None,
               with_vectors: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        examples = self.as_examples(examples)
        total: np.ndarray | None = None
        vectors = None
        for name, weight in self.weights.items():
            if weight <= 0:
                continue
            out, vec = self.members[name].scores(examples, batch_size, None, with_vectors and vectors is None)
            vectors = vec if vectors is None else vectors
            total = weight * out if total is None else total + weight * out
        assert total is not None, "an ensemble has a member with a positive weight"
        if on_batch:
            on_batch(len(examples))
        if self.temperature is not None and task_of(self.task).scores_classes:
            total = apply_temperature(total, self.temperature)
        return total, vectors
