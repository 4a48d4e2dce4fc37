"""Long documents (``model.kind: long_text``), see :mod:`fintune.models.long_text`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from fintune.config import LongTextConfig, ModelConfig
from fintune.models.fusion import new_encoder
from fintune.models.long_text import LongTextModel
from fintune.models.metadata import RunMeta
from fintune.models.inference import DocumentWindows, Processor
from fintune.models.predictor import Predictor, register_predictor
from fintune.tasks import task_of


@register_predictor("long_text")
class LongTextPredictor(Predictor):
    """The encoder reads every window of a document; the pooled windows feed the head."""
    card_origin = ("the encoder `{backbone}` fine-tuned with strategy `{strategy}` on documents read as "
                   "overlapping windows, pooled into one prediction per document")

    onnx_export = ("a long-text model pools a varying number of windows per document, which the ONNX export "
                   "of one fixed-shape classifier does not trace; serve it with torch (`fintune serve RUN`)")
    explanation = "windows"

    @classmethod
    def build(cls, cfg: ModelConfig, task: str, label_names: list[str] | None, n_features: int, prompt: Any,
              load_kwargs: dict[str, Any]) -> torch.nn.Module:
        encoder = new_encoder(cfg)
        num_labels = 1 if task_of(task).answer == "value" else len(label_names or [])
        dropout = cfg.dropout if cfg.dropout is not None else 0.1
        return LongTextModel(encoder, cfg.long_text.pooling, num_labels, dropout)

    @classmethod
    def processors(cls, tokenizer: Any, max_length: int, features: Any, prompt: Any,
                   windows: Any) -> tuple[Processor, ...]:
        return (DocumentWindows(tokenizer, max_length, windows),)

    @classmethod
    def new_windows(cls, cfg: ModelConfig) -> LongTextConfig:
        return cfg.long_text

    @classmethod
    def _load_model(cls, folder: Path, meta: RunMeta, tokenizer: Any) -> torch.nn.Module:
        return LongTextModel.load(folder)

    def _save_model(self, folder: Path) -> None:
        self.model.save(folder)
