"""Causal LMs with a classification head (``model.kind: causal``, ``model.head: classifier``).

``AutoModelForSequenceClassification`` on a decoder (Llama, Qwen, ...) reads the text and a
linear layer maps the hidden state of the last real token (the only one that has seen the
whole text) to the classes. That is a sequence classifier like an encoder's, so everything
downstream (calibration, thresholds, explanations, the server, export) treats it as one; what
differs is how it is built: the pad token must be known to the model, which finds the last
real token by it.
"""

from __future__ import annotations

from typing import Any

import torch

from fintune.config import ModelConfig
from fintune.models.backbones import load_causal_head
from fintune.models.kinds.text import TextPredictor
from fintune.models.predictor import register_predictor


@register_predictor("causal_head")
class CausalHeadPredictor(TextPredictor):
    """``model.kind: causal`` with ``model.head: classifier``: the LM's last token, a linear head."""
    card_origin = ("the causal LM `{backbone}` with a linear classification head on its last real token, "
                   "fine-tuned with strategy `{strategy}`")

    @classmethod
    def build(cls, cfg: ModelConfig, task: str, label_names: list[str] | None, n_features: int, prompt: Any,
              load_kwargs: dict[str, Any]) -> torch.nn.Module:
        return load_causal_head(cfg, label_names or [], load_kwargs, task)
