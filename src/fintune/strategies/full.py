"""Full fine-tuning: every parameter trains."""

from __future__ import annotations

from typing import Literal

from torch import nn

from fintune.strategies.base import Strategy, StrategyConfig, register


class FullConfig(StrategyConfig):
    name: Literal["full"] = "full"


@register
class Full(Strategy):
    name = "full"
    Config = FullConfig

    def prepare(self, model: nn.Module) -> nn.Module:
        for param in model.parameters():
            param.requires_grad = True
        return model
