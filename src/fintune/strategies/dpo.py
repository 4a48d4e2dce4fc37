"""DPO (Rafailov et al. 2023): preference tuning of a causal LM on {prompt, chosen, rejected}.

A LoRA adapter trains on the backbone (typically an instruction-tuned model: a merged SFT run's
``model`` folder, or an instruct model from the catalogue). The strategy declares its rules
(causal LMs, task generation, its config) and names its training objective, ``preference``,
which :mod:`fintune.training.preference` computes: the reference policy is the same model
with the adapter disabled, and the loss is TRL's "sigmoid" DPO loss, plus the chosen answers'
likelihood times ``sft_weight`` (RPO) when that is set.
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
    sft_weight: float = Field(0.0, ge=0, description="weight of the chosen answers' negative log-likelihood added "
                              "to the DPO loss (RPO; TRL's loss_type [sigmoid, sft]); 1.0 keeps a small pair set "
                              "from drifting away from answers it was right about")
    ref_batch_size: int = Field(16, ge=1, description="sequences per forward pass of the reference log-probs")


@register
class Dpo(Lora):
    name = "dpo"
    Config = DpoStrategyConfig
    kinds = frozenset({"causal"})
    tasks = frozenset({"generation"})
    dp = False
    objective = "preference"
