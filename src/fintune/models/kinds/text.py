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
from fintune.models.predictor import Predictor, register_predictor
from fintune.models.reading import ADAPTER, adapter_base
from fintune.tasks import task_of


@register_predictor("text")
class TextPredictor(Predictor):
    """``model.kind: text``: the encoder reads the text (or a text pair)."""

    explanation = "integrated_gradients"

    @property
    def explanation_method(self) -> str | None:
        """Integrated Gradients over the words of a text; occlusion per column when the text is
        a table row serialized by fintune (a reviewer asks which column, not which word piece)."""
        if not task_of(self.task).explained:
            return None
        rows = self.data_config.text_column is None and self.data_config.feature_columns
        return "occlusion" if rows else "integrated_gradients"

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

    def folded(self) -> Predictor:
        """Logits divided by T are the classifier's output layer with its weight and bias divided
        by T: the same softmax, computed inside the Hugging Face model (after LoRA is merged)."""
        if self.temperature is None or not task_of(self.task).scores_classes or self.is_adapter:
            return self
        import copy

        model = copy.deepcopy(self.model)
        layer = output_layer(model, len(self.label_names or []))
        with torch.no_grad():
            layer.weight.div_(self.temperature)
            if layer.bias is not None:
                layer.bias.div_(self.temperature)
        meta = self.meta.updated(temperature=None, folded_temperature=self.temperature)
        return type(self)(model, self.tokenizer, meta, self.dtype, self.features)


def output_layer(model: torch.nn.Module, num_labels: int) -> torch.nn.Linear:
    """The last linear layer with one output per label: the sequence classifier's output."""
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == num_labels]
    if not layers:
        raise ValueError(f"no linear layer with {num_labels} outputs in {type(model).__name__}")
    return layers[-1]
