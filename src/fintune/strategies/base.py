"""The strategy interface and its registry.

A strategy decides which parameters train and with which learning rate; the one training
loop in :mod:`fintune.training.loop` does the rest. Each strategy lives in its own file,
declares a typed config and registers itself by name.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from fintune.errors import ConfigError


class StrategyConfig(BaseModel):
    """Base of every strategy's config; ``name`` selects the registered strategy."""

    model_config = ConfigDict(extra="forbid")
    name: str


class Strategy:
    """Base class: override :meth:`prepare` (and optionally the hooks) in a subclass."""

    name: ClassVar[str]
    Config: ClassVar[type[StrategyConfig]]

    def __init__(self, config: StrategyConfig) -> None:
        self.config = config

    def prepare(self, model: nn.Module) -> nn.Module:
        """Set ``requires_grad`` (or wrap the model) before training; return the model."""
        return model

    def param_groups(self, model: nn.Module, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        """Optimizer groups: no weight decay on biases and LayerNorm weights, as BERT does."""
        decay, no_decay = [], []
        for name, param in model.named_parameters():
            if not param.requires_grad:
                continue
            (no_decay if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
        return [
            {"params": decay, "lr": lr, "weight_decay": weight_decay},
            {"params": no_decay, "lr": lr, "weight_decay": 0.0},
        ]

    def on_epoch_start(self, model: nn.Module, epoch: int) -> None:
        """Hook for strategies that change what trains between epochs."""


STRATEGIES: dict[str, type[Strategy]] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator: make a strategy available under ``cls.name``."""
    STRATEGIES[cls.name] = cls
    return cls


def strategy_config(raw: Any) -> StrategyConfig:
    """Validate a strategy config dict against the config class of the strategy it names."""
    if isinstance(raw, StrategyConfig):
        return raw
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict) or "name" not in raw:
        raise ConfigError(f"strategy needs a name, one of: {', '.join(sorted(STRATEGIES))}")
    name = raw["name"]
    if name not in STRATEGIES:
        import difflib

        near = difflib.get_close_matches(str(name), STRATEGIES, n=1)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        raise ConfigError(
            f"unknown strategy '{name}'{hint} Known strategies: {', '.join(sorted(STRATEGIES))}"
        )
    return STRATEGIES[name].Config.model_validate(raw)


def build_strategy(config: StrategyConfig) -> Strategy:
    """Instantiate the registered strategy for a validated config."""
    return STRATEGIES[config.name](config)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """Return (trainable, total) parameter counts."""
    total = trainable = 0
    for param in model.parameters():
        total += param.numel()
        if param.requires_grad:
            trainable += param.numel()
    return trainable, total


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The stack of transformer blocks of a Hugging Face encoder, bottom first."""
    base = getattr(model, "base_model", model)
    for path in ("encoder.layer", "transformer.layer", "encoder.layers", "layers", "h"):
        obj: Any = base
        for attr in path.split("."):
            obj = getattr(obj, attr, None)
            if obj is None:
                break
        if isinstance(obj, nn.ModuleList):
            return obj
    raise ConfigError(
        f"cannot find the transformer layers of {type(model).__name__}; "
        "use strategy 'full' for this backbone"
    )


def head_parameters(model: nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    """Parameters outside the encoder body: the task head, plus BERT's pooler feeding it."""
    base = getattr(model, "base_model", None)
    body = {id(p) for p in base.parameters()} if base is not None and base is not model else set()
    pooler = getattr(base, "pooler", None)
    pooled = {id(p) for p in pooler.parameters()} if isinstance(pooler, nn.Module) else set()
    return [(n, p) for n, p in model.named_parameters() if id(p) not in body or id(p) in pooled]
