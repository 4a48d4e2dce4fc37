"""Frozen feature extractor: the head trains, plus optionally the top k encoder layers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from fintune.strategies.base import (
    Strategy, StrategyConfig, encoder_layers, head_parameters, register,
)

if TYPE_CHECKING:
    from torch import nn



class FreezeConfig(StrategyConfig):
    name: Literal["freeze"] = "freeze"
    trainable_layers: int = Field(0, ge=0, description="top encoder layers that train; 0 = head only")


@register
class Freeze(Strategy):
    name = "freeze"
    Config = FreezeConfig
    kinds = frozenset({"text", "long_text", "fusion"})
    tasks = frozenset({"classification", "regression", "token_classification", "multi_label", "relation"})
    dp = True

    def prepare(self, model: nn.Module) -> nn.Module:
        cfg: FreezeConfig = self.config  # type: ignore[assignment]
        for param in model.parameters():
            param.requires_grad = False
        for _, param in head_parameters(model):
            param.requires_grad = True
        layers = encoder_layers(model)
        # layers[n - 0:] is empty, so trainable_layers=0 leaves the body frozen.
        for layer in list(layers)[len(layers) - cfg.trainable_layers:]:
            for param in layer.parameters():
                param.requires_grad = True
        return model
