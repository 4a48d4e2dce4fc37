"""DPO (Rafailov et al. 2023): preference tuning of a causal LM on {prompt, chosen, rejected}.

A LoRA adapter trains on the backbone (typically an instruction-tuned model: a merged SFT run's
``model`` folder, or an instruct model from the catalogue). The strategy declares its rules
(causal LMs, task generation, its config) and names its training objective, ``preference``,
which :mod:`fintune.training.preference` computes: the reference policy is the same model
with the adapter disabled, and the loss is TRL's "sigmoid" DPO loss.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fintune.strategies.base import register
from fintune.strategies.lora import Lora, LoraStrategyConfig


class DpoStrategyConfig(LoraStrategyConfig):
    name: Literal["dpo"] = "dpo"  # type: ignore[assignment]
    beta: float = Field(0.1, gt=0, description="how far the policy may move from the reference: smaller moves "
                        "further (TRL's default 0.1)")
    ref_batch_size: int = Field(16, ge=1, description="sequences per forward pass of the reference log-probs")


@register
class Dpo(Lora):
    name = "dpo"
    Config = DpoStrategyConfig
    kinds = frozenset({"causal"})
    tasks = frozenset({"generation"})
    dp = False
    objective = "preference"
