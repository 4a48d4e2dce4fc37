"""LoRA (PEFT): low-rank adapters on the attention projections; the head trains in full."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from fintune.strategies.base import StrategyConfig, register
from fintune.strategies.peft_common import PeftStrategy, head_modules

if TYPE_CHECKING:
    from torch import nn



class LoraStrategyConfig(StrategyConfig):
    name: Literal["lora"] = "lora"
    r: int = Field(8, ge=1, description="rank of the update matrices")
    alpha: int = Field(16, ge=1, description="scaling: the update is multiplied by alpha / r")
    dropout: float = Field(0.1, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] | None = Field(
        None, description="module names (suffixes) to adapt; 'all-linear' for every linear layer; default: "
        "BERT's query, key, value, dense for encoders, every attention and MLP projection for causal LMs")
    modules_to_save: list[str] = Field(default_factory=list, description="more modules to train in full and "
                                       "save with the adapter (e.g. lm_head of a small causal LM)")
    merge: bool = Field(False, description="save a merged plain model instead of the adapter")


@register
class Lora(PeftStrategy):
    name = "lora"
    Config = LoraStrategyConfig
    # Fusion keeps the encoder a plain module inside its own head, so PEFT does not wrap it.
    kinds = frozenset({"text", "causal"})
    dp = True

    def peft_config(self, model: nn.Module, causal: bool = False) -> Any:
        from peft import LoraConfig, TaskType

        cfg: LoraStrategyConfig = self.config  # type: ignore[assignment]
        if causal:  # "all-linear": q/k/v/o and the MLP projections, never the LM head
            return LoraConfig(task_type=TaskType.CAUSAL_LM, r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                              target_modules=cfg.target_modules or "all-linear",
                              modules_to_save=cfg.modules_to_save or None)
        # A tagger's encoder is a ...ForTokenClassification model: PEFT wraps it for that task.
        tagging = type(model).__name__.endswith("ForTokenClassification")
        bert_names = {"query", "key", "value", "dense"}
        # BERT-style encoders name their projections; a decoder with a classification head
        # (q_proj, gate_proj, ...) gets every linear layer but the head, as a causal LM does.
        encoder = any(name.rsplit(".", 1)[-1] in bert_names for name, _ in model.named_modules())
        return LoraConfig(
            task_type=TaskType.TOKEN_CLS if tagging else TaskType.SEQ_CLS, r=cfg.r, lora_alpha=cfg.alpha,
            lora_dropout=cfg.dropout, target_modules=cfg.target_modules or (sorted(bert_names) if encoder else "all-linear"),
            modules_to_save=head_modules(model) + cfg.modules_to_save,
            # "dense" would also match BERT's pooler, which is frozen or trained in full.
            exclude_modules=["pooler.dense"] if encoder else None,
        )

    def finalize(self, model: nn.Module) -> nn.Module:
        cfg: LoraStrategyConfig = self.config  # type: ignore[assignment]
        if not cfg.merge:
            return model
        inner = getattr(model, "peft_attribute", None)
        if inner is not None:  # a causal classifier or a tagger: merge inside
            setattr(model, inner, getattr(model, inner).merge_and_unload())
            return model
        return model.merge_and_unload()
