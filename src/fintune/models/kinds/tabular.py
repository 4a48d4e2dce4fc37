"""Table models with a torch head: fusion (the encoder's sentence vector joined with the
row's features) and mlp (the features alone); served, exported, explained by occlusion."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch

from fintune.config import ModelConfig
from fintune.models.fusion import FusionModel, load_fusion, new_encoder
from fintune.models.metadata import RunMeta
from fintune.models.predictor import Predictor, register_predictor
from fintune.tasks import task_of


@register_predictor("fusion")
class FusionPredictor(Predictor):
    """``model.kind: fusion``: text and features through one head."""

    explanation = "occlusion"
    reads_features = True
    with_encoder: ClassVar[bool] = True
    card_origin = ("the encoder `{backbone}` fine-tuned with strategy `{strategy}`, its text embedding joined with "
                   "the encoded feature columns in one classification or regression head")
    card_library = "pytorch"

    @classmethod
    def build(cls, cfg: ModelConfig, task: str, label_names: list[str] | None, n_features: int, prompt: Any,
              load_kwargs: dict[str, Any]) -> torch.nn.Module:
        num_labels = 1 if task_of(task).answer == "value" else len(label_names or [])
        if not cls.with_encoder:  # the mlp: no sentence vector to project
            return FusionModel(None, n_features, num_labels, hidden=cfg.head_hidden)
        return FusionModel(new_encoder(cfg), n_features, num_labels, hidden=cfg.head_hidden, text_dim=cfg.text_dim)

    @classmethod
    def _load_model(cls, folder: Path, meta: RunMeta, tokenizer: Any) -> torch.nn.Module:
        assert meta.fusion_shape is not None, "a fusion model's metadata holds its shape"
        return load_fusion(folder, meta.fusion_shape, with_encoder=cls.with_encoder)

    def _save_model(self, folder: Path) -> None:
        if isinstance(self.model, FusionModel):
            self.model.save(folder)
            self.meta.fusion_shape = self.model.shape


@register_predictor("mlp")
class MLPPredictor(FusionPredictor):
    """``model.kind: mlp``: the features alone (a baseline)."""

    reads_text = False
    with_encoder = False
    card_origin = "a multilayer perceptron trained from scratch on the encoded feature columns (no pretrained backbone)"
