"""LoRA (PEFT): low-rank adapters on the attention projections; the head trains in full."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from torch import nn

from fintune.strategies.base import StrategyConfig, register
from fintune.strategies.peft_common import PeftStrategy, head_modules


class LoraStrategyConfig(StrategyConfig):
    name: Literal["lora"] = "lora"
    r: int = Field(8, ge=1, description="rank of the update matrices")
    alpha: int = Field(16, ge=1, description="scaling: the update is multiplied by alpha / r")
    dropout: float = Field(0.1, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = Field(
        default_factory=lambda: ["query", "key", "value", "dense"],
        description="module names (suffixes) to adapt; 'all-linear' for every linear layer")
    merge: bool = Field(False, description="save a merged plain model instead of the adapter")


@register
class Lora(PeftStrategy):
    name = "lora"
    Config = LoraStrategyConfig

    def peft_config(self, model: nn.Module) -> Any:
        from peft import LoraConfig, TaskType

        cfg: LoraStrategyConfig = self.config  # type: ignore[assignment]
        return LoraConfig(
            task_type=TaskType.SEQ_CLS, r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
            target_modules=cfg.target_modules, modules_to_save=head_modules(model),
            # "dense" would also match BERT's pooler, which is frozen or trained in full.
            exclude_modules=["pooler.dense"],
        )

    def finalize(self, model: nn.Module) -> nn.Module:
        cfg: LoraStrategyConfig = self.config  # type: ignore[assignment]
        return model.merge_and_unload() if cfg.merge else model
