"""What the PEFT-based strategies share: which modules train and save beside the adapter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any


from fintune.strategies.base import Strategy

if TYPE_CHECKING:
    from torch import nn



def head_modules(model: nn.Module) -> list[str]:
    """Module names to train fully and save with the adapter (PEFT ``modules_to_save``).

    The classification head is new, so it must be saved, or a reloaded model has a fresh
    random head and different logits: a known pitfall of PEFT with FinBERT. BERT's pooler
    feeds the head; when the checkpoint lacks it (some sentence-transformers exports), it is
    randomly initialized on every load, so then it is trained and saved too.
    """
    from torch import nn

    names = [n for n in ("classifier", "score") if isinstance(getattr(model, n, None), nn.Module)]
    pooler = getattr(getattr(model, "base_model", None), "pooler", None)
    # Unknown provenance counts as random: saving a pooler costs little, losing it costs logits.
    fresh = getattr(model, "fintune_newly_initialized", None)
    if isinstance(pooler, nn.Module) and (fresh is None or any("pooler" in key for key in fresh)):
        names.append("pooler")
    return names


class PeftStrategy(Strategy):
    """A strategy that wraps the model with a PEFT method; subclasses build its config."""

    def peft_config(self, model: nn.Module, causal: bool = False) -> Any:
        """The PEFT config; ``causal`` for a causal LM, alone or inside a causal classifier."""
        raise NotImplementedError

    def prepare(self, model: nn.Module) -> nn.Module:
        from peft import get_peft_model
        from transformers import GenerationMixin

        # A wrapper (causal classifier, tagger with CRF) names the transformer inside it: adapters go
        # there, and what the wrapper adds on top (label-word scoring, the CRF) stays outside.
        inner = getattr(model, "peft_attribute", None)
        if inner is not None:
            target = getattr(model, inner)
            setattr(model, inner, get_peft_model(target, self.peft_config(target, isinstance(target, GenerationMixin))))
            return model
        return get_peft_model(model, self.peft_config(model, causal=isinstance(model, GenerationMixin)))
