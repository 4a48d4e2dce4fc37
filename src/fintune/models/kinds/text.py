"""Encoder models that read text: a Hugging Face sequence classifier (or regressor), plain or
with a PEFT adapter; served, exported to ONNX, explained by Integrated Gradients."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification

from fintune.config import ModelConfig
from fintune.models.backbones import load_model
from fintune.models.metadata import RunMeta
from fintune.models.predictor import ADAPTER, Predictor, adapter_base, register_predictor


@register_predictor("text")
class TextPredictor(Predictor):
    """``model.kind: text``: the encoder reads the text (or a text pair)."""

    explanation = "integrated_gradients"

    @classmethod
    def build(cls, cfg: ModelConfig, task: str, label_names: list[str] | None, n_features: int, prompt: Any,
              load_kwargs: dict[str, Any]) -> torch.nn.Module:
        return load_model(cfg, task, label_names)  # type: ignore[arg-type]

    @classmethod
    def _load_model(cls, folder: Path, meta: RunMeta, tokenizer: Any) -> torch.nn.Module:
        if not (folder / ADAPTER).exists():
            return AutoModelForSequenceClassification.from_pretrained(folder, use_safetensors=True)
        # A PEFT adapter: the base weights come from the backbone, the head from the adapter.
        from peft import PeftModel

        base = AutoModelForSequenceClassification.from_pretrained(
            adapter_base(folder, meta), config=AutoConfig.from_pretrained(folder), use_safetensors=True)
        return PeftModel.from_pretrained(base, folder)
