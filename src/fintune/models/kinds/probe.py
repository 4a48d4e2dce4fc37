"""A linear probe on a frozen encoder (``model.kind: probe``), see :mod:`fintune.models.probe`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from fintune.config import ModelConfig
from fintune.models.fusion import new_encoder
from fintune.models.metadata import RunMeta
from fintune.models.predictor import Predictor, register_predictor
from fintune.models.probe import ProbeHead, ProbeModel
from fintune.tasks import task_of


@register_predictor("probe")
class ProbePredictor(Predictor):
    """The frozen encoder's sentence vector through a trained linear layer."""
    card_origin = "a linear probe on the frozen embeddings of `{backbone}` (the backbone itself unchanged)"

    onnx_export = ("a probe is served as it is; its encoder is the backbone unchanged, so export the "
                   "backbone once and reuse it for every probe")
    explanation = None

    @classmethod
    def build(cls, cfg: ModelConfig, task: str, label_names: list[str] | None, n_features: int, prompt: Any,
              load_kwargs: dict[str, Any]) -> torch.nn.Module:
        encoder = new_encoder(cfg)
        encoder.requires_grad_(False)
        num_labels = 1 if task_of(task).answer == "value" else len(label_names or [])
        return ProbeModel(encoder, ProbeHead(encoder.config.hidden_size, num_labels))

    @classmethod
    def _load_model(cls, folder: Path, meta: RunMeta, tokenizer: Any) -> torch.nn.Module:
        return ProbeModel.load(folder)

    def _save_model(self, folder: Path) -> None:
        self.model.save(folder)
