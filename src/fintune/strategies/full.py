"""Full fine-tuning: every parameter trains."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal


from fintune.strategies.base import ALL_KINDS, Strategy, StrategyConfig, register

if TYPE_CHECKING:
    from torch import nn



class FullConfig(StrategyConfig):
    name: Literal["full"] = "full"


@register
class Full(Strategy):
    name = "full"
    Config = FullConfig
    kinds = ALL_KINDS  # gbm fits trees and ignores the strategy; full is its only valid name
    dp = True

    def prepare(self, model: nn.Module) -> nn.Module:
        for param in model.parameters():
            param.requires_grad = True
        return model
