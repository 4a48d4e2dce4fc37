"""The FinBERT recipe (Araci 2019, arXiv 1908.10063; after ULMFiT, Howard & Ruder 2018).

Gradual unfreezing from the top layer down, discriminative learning rates that shrink
with depth, and a slanted triangular schedule: a short linear rise, then a long decay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from fintune.strategies.base import (
    Strategy, StrategyConfig, encoder_layers, head_parameters, register, split_decay,
)

if TYPE_CHECKING:
    from torch import nn
    from torch.optim import Optimizer
    from torch.optim.lr_scheduler import LRScheduler



class GradualConfig(StrategyConfig):
    name: Literal["gradual"] = "gradual"
    lr_decay: float = Field(0.85, gt=0, le=1, description="lr of each layer = lr of the one above x lr_decay")
    unfreeze_fraction: float = Field(0.33, gt=0, le=1,
                                     description="share of training over which all layers thaw")
    cut_frac: float = Field(0.1, gt=0, lt=1, description="share of steps with rising lr")
    ratio: float = Field(32, ge=1, description="how much smaller the lowest lr is than the peak")


@register
class Gradual(Strategy):
    name = "gradual"
    Config = GradualConfig
    kinds = frozenset({"text", "long_text", "fusion"})
    tasks = frozenset({"classification", "regression", "token_classification", "multi_label", "relation"})

    def _groups(self, model: nn.Module) -> list[list[tuple[str, nn.Parameter]]]:
        """Top first: head, top layer, ..., bottom layer, then everything else (embeddings)."""
        head = head_parameters(model)
        layers = [list(layer.named_parameters()) for layer in reversed(encoder_layers(model))]
        seen = {id(p) for group in [head, *layers] for _, p in group}
        rest = [(n, p) for n, p in model.named_parameters() if id(p) not in seen]
        return [head, *layers, rest]

    def prepare(self, model: nn.Module) -> nn.Module:
        # Everything trains eventually; on_step decides what trains when.
        for param in model.parameters():
            param.requires_grad = True
        return model

    def param_groups(self, model: nn.Module, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        cfg: GradualConfig = self.config  # type: ignore[assignment]
        groups = []
        for depth, named in enumerate(self._groups(model)):
            groups.extend(split_decay(named, lr * cfg.lr_decay ** depth, weight_decay))
        return groups

    def on_step(self, model: nn.Module, step: int, total_steps: int) -> None:
        cfg: GradualConfig = self.config  # type: ignore[assignment]
        groups = self._groups(model)
        interval = max(1.0, cfg.unfreeze_fraction * total_steps / max(len(groups) - 1, 1))
        thawed = 1 + int(step / interval)  # a pure function of step, so resume gets it right
        for depth, named in enumerate(groups):
            for _, param in named:
                param.requires_grad = depth < thawed

    def schedule(self, optimizer: Optimizer, total_steps: int, warmup_steps: int) -> LRScheduler:
        cfg: GradualConfig = self.config  # type: ignore[assignment]
        from torch.optim.lr_scheduler import LambdaLR

        cut = max(1, int(total_steps * cfg.cut_frac))

        def slanted_triangular(step: int) -> float:
            p = step / cut if step < cut else 1 - (step - cut) / max(total_steps - cut, 1)
            return (1 + max(p, 0.0) * (cfg.ratio - 1)) / cfg.ratio

        return LambdaLR(optimizer, slanted_triangular)
