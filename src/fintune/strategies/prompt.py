"""Prompt tuning (PEFT): trainable virtual tokens before the input; the body stays frozen."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from fintune.strategies.base import StrategyConfig, register
from fintune.strategies.peft_common import PeftStrategy, head_modules

if TYPE_CHECKING:
    from torch import nn



class PromptConfig(StrategyConfig):
    name: Literal["prompt"] = "prompt"
    num_virtual_tokens: int = Field(20, ge=1)
    init: Literal["random", "text"] = "text"
    init_text: str = Field("Classify the sentiment of this financial text:",
                           description="with init: text, the virtual tokens start as these words")


@register
class Prompt(PeftStrategy):
    name = "prompt"
    # Virtual tokens have no words to tag; PEFT's prompt methods here are sequence-level.
    tasks = frozenset({"classification", "regression"})
    packable = False
    Config = PromptConfig

    def peft_config(self, model: nn.Module, causal: bool = False) -> Any:
        from peft import PromptTuningConfig, PromptTuningInit, TaskType

        cfg: PromptConfig = self.config  # type: ignore[assignment]
        text = cfg.init == "text"
        return PromptTuningConfig(
            task_type=TaskType.SEQ_CLS, num_virtual_tokens=cfg.num_virtual_tokens,
            prompt_tuning_init=PromptTuningInit.TEXT if text else PromptTuningInit.RANDOM,
            prompt_tuning_init_text=cfg.init_text if text else None,
            tokenizer_name_or_path=model.config.name_or_path if text else None,
            modules_to_save=head_modules(model),
        )
