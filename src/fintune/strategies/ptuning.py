"""P-tuning (PEFT): virtual tokens produced by a small trainable prompt encoder."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from fintune.strategies.base import StrategyConfig, register
from fintune.strategies.peft_common import PeftStrategy, head_modules

if TYPE_CHECKING:
    from torch import nn



class PtuningConfig(StrategyConfig):
    name: Literal["ptuning"] = "ptuning"
    num_virtual_tokens: int = Field(20, ge=1)
    encoder_hidden_size: int = Field(128, ge=1)
    encoder_type: Literal["MLP", "LSTM"] = "MLP"


@register
class Ptuning(PeftStrategy):
    name = "ptuning"
    # Virtual tokens have no words to tag; PEFT's prompt methods here are sequence-level.
    tasks = frozenset({"classification", "regression"})
    packable = False
    Config = PtuningConfig

    def peft_config(self, model: nn.Module, causal: bool = False) -> Any:
        from peft import PromptEncoderConfig, TaskType

        cfg: PtuningConfig = self.config  # type: ignore[assignment]
        return PromptEncoderConfig(
            task_type=TaskType.SEQ_CLS, num_virtual_tokens=cfg.num_virtual_tokens,
            encoder_hidden_size=cfg.encoder_hidden_size, encoder_reparameterization_type=cfg.encoder_type,
            modules_to_save=head_modules(model),
        )
