"""Which models read packed batches exactly, and how (see fintune.data.packing).

A Hugging Face ``...ForSequenceClassification`` pools one token per sequence; packed, a
sequence holds several rows, so the transformer inside it runs on the packed batch and each
row's own token (the first for encoders, the last for decoders) goes through the model's own
head. One entry per architecture, keyed by its class name: an architecture with no entry is
trained padded, as before. A head here must be what the class's ``forward`` computes from
that token, no more (the tests compare logits and gradients with the padded model).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Literal

import torch
from torch import nn


@dataclass(frozen=True)
class PackedHead:
    """How one architecture reads a packed batch."""

    transformer: str  # the attribute holding the transformer (bert, mpnet, model, ...)
    head: Callable[[nn.Module, torch.Tensor], torch.Tensor]  # (model, pooled (rows, hidden)) -> logits
    pool: Literal["first", "last"]  # the token each row is classified from
    # Decoders find the rows from the position ids (no mask); encoders take a block mask.
    causal: bool = False
    # RoBERTa-style embeddings count positions from the pad id + 1.
    offset_from_pad: bool = False

    def position_offset(self, config: Any) -> int:
        return int(config.pad_token_id) + 1 if self.offset_from_pad else 0


def _first_token_head(model: nn.Module, pooled: torch.Tensor) -> torch.Tensor:
    # RoBERTa, XLM-R and MPNet heads read features[:, 0]: a length-1 sequence of the pooled token.
    return model.classifier(pooled[:, None])


PACKED_HEADS: dict[str, PackedHead] = {
    "BertForSequenceClassification": PackedHead(
        "bert", lambda m, h: m.classifier(m.dropout(m.bert.pooler(h[:, None]))), "first"),
    "MPNetForSequenceClassification": PackedHead("mpnet", _first_token_head, "first", offset_from_pad=True),
    "RobertaForSequenceClassification": PackedHead("roberta", _first_token_head, "first", offset_from_pad=True),
    "XLMRobertaForSequenceClassification": PackedHead("roberta", _first_token_head, "first", offset_from_pad=True),
    "LlamaForSequenceClassification": PackedHead("model", lambda m, h: m.score(h), "last", causal=True),
    "Qwen2ForSequenceClassification": PackedHead("model", lambda m, h: m.score(h), "last", causal=True),
}


# Causal LMs whose attention transformers restricts to each row from the position ids alone
# (instruction tuning: the loss on each row's answer tokens, never across a row boundary).
PACKED_LMS = frozenset({"LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM"})


def hf_model(model: nn.Module) -> nn.Module:
    """The Hugging Face model inside a PEFT wrapper (its LoRA layers are in place in it)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def packed_head(model: nn.Module) -> PackedHead | None:
    """The packing of ``model``'s architecture; None where it has none (trained padded)."""
    return PACKED_HEADS.get(type(hf_model(model)).__name__)


def additive(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """A boolean mask (True: attend) as the additive one every attention implementation reads:
    eager attention (MPNet's only one) adds the mask to the scores, so a boolean would add 1s."""
    if mask is None or mask.dtype != torch.bool:
        return mask
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, torch.finfo(dtype).min)


class PackedForward(nn.Module):
    """Calls ``model`` on a packed batch and returns one row of logits per packed row, in the
    order the rows were given (what the training objective indexes)."""

    def __init__(self, model: nn.Module, head: PackedHead) -> None:
        super().__init__()
        self.model, self.spec = model, head

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor, row_first: torch.Tensor,
                row_last: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> SimpleNamespace:
        inner = hf_model(self.model)
        kwargs: dict[str, Any] = {"input_ids": input_ids, "position_ids": position_ids}
        if self.spec.causal:
            kwargs["use_cache"] = False  # with a cache transformers ignores the packed position ids
        else:
            kwargs["attention_mask"] = additive(attention_mask, inner.dtype)
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        hidden = getattr(inner, self.spec.transformer)(**kwargs).last_hidden_state
        rows = row_first if self.spec.pool == "first" else row_last
        pooled = hidden.reshape(-1, hidden.shape[-1])[rows]
        return SimpleNamespace(logits=self.spec.head(inner, pooled))


class PackedLM(nn.Module):
    """A causal LM on a packed batch: next-token logits at every packed position, or with
    ``keep`` (a boolean (batch, L) mask) only at its True positions, flattened in order."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor, row_first: torch.Tensor,
                row_last: torch.Tensor, keep: torch.Tensor | None = None) -> SimpleNamespace:
        # Only the positions that predict an answer token need the vocabulary projection: on a
        # 150,000-word vocabulary it is a quarter of a 0.5B model's forward (transformers
        # slices the hidden states before lm_head).
        out = hf_model(self.model)(input_ids=input_ids, position_ids=position_ids, use_cache=False,
                                   logits_to_keep=0 if keep is None else keep)
        return SimpleNamespace(logits=out.logits)
