"""QLoRA (Dettmers et al. 2023): LoRA adapters on a 4-bit NF4 base loaded by bitsandbytes.

For causal LMs on a CUDA GPU; elsewhere it stops before loading anything and says to use
``lora`` (bitsandbytes' 4-bit kernels need CUDA).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from fintune.errors import FintuneError
from fintune.strategies.base import register
from fintune.strategies.lora import Lora, LoraStrategyConfig

if TYPE_CHECKING:
    from torch import nn



class QLoraStrategyConfig(LoraStrategyConfig):
    name: Literal["qlora"] = "qlora"  # type: ignore[assignment]
    compute_dtype: Literal["bfloat16", "float16"] = Field("bfloat16", description="dtype of the 4-bit matmuls")
    double_quant: bool = Field(True, description="quantize the quantization constants too (saves ~0.4 bit/param)")


@register
class QLora(Lora):
    name = "qlora"
    Config = QLoraStrategyConfig
    # bitsandbytes quantizes causal LMs; CUDA is checked when training starts (load_kwargs).
    kinds = frozenset({"causal"})
    tasks = frozenset({"classification", "generation", "multi_label", "relation"})
    dp = False

    def load_kwargs(self) -> dict[str, Any]:
        import torch

        if not torch.cuda.is_available():
            raise FintuneError("strategy qlora loads the model in 4 bits with bitsandbytes, which needs a CUDA "
                               "GPU, and this machine has none; use strategy lora (same adapters, full-precision "
                               "base) or train on a GPU machine")
        try:
            from transformers import BitsAndBytesConfig
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise FintuneError("strategy qlora needs bitsandbytes: pip install bitsandbytes") from None
        cfg: QLoraStrategyConfig = self.config  # type: ignore[assignment]
        return {"quantization_config": BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=cfg.double_quant,
            bnb_4bit_compute_dtype=getattr(torch, cfg.compute_dtype))}

    def prepare(self, model: nn.Module) -> nn.Module:
        from peft import prepare_model_for_kbit_training

        inner = getattr(model, "peft_attribute", None)
        if inner is not None:  # a causal classifier: the LM inside is what was loaded in 4 bits
            setattr(model, inner, prepare_model_for_kbit_training(getattr(model, inner), use_gradient_checkpointing=False))
        else:  # an instruction-tuned LM
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        return super().prepare(model)
