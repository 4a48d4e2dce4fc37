"""train.packing: whether a run trains on packed batches, and its batches.

Packing is exact (the same logits and gradients as padding, see fintune.data.packing), so
``auto`` turns it on wherever the model, the strategy and the loop allow it, and says nothing
where they do not; ``true`` makes the reason an error.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from fintune.data.packing import pack
from fintune.errors import ConfigError
from fintune.models.inference import CUT
from fintune.models.packing import PackedHead, hf_model, packed_head
from fintune.strategies import Strategy
from fintune.training.objectives import Batcher

# What a packed batch carries: token ids and segment ids (and the rows cut at max_length).
PACKABLE_INPUTS = frozenset({"input_ids", "token_type_ids", CUT})


def packing_for(setting: bool | Literal["auto"], model: nn.Module, strategy: Strategy, encoded: dict[str, Any], *,
                custom_batches: bool, dp: bool, distributed: bool) -> PackedHead | None:
    """The packing this run trains with, or None (padded batches); an error where
    ``train.packing: true`` asks for what cannot be packed exactly."""
    if setting is False:
        return None
    head = packed_head(model)
    reasons = [
        (custom_batches, "its objective builds batches of its own (preference pairs, masked tokens, answers)"),
        (dp, "DP-SGD computes each example's gradient from a padded row"),
        (distributed, "several processes train through DistributedDataParallel's own forward"),
        (not strategy.packable, f"strategy '{strategy.name}' adds virtual tokens in its own forward"),
        (not set(encoded) <= PACKABLE_INPUTS, "the model reads more than token ids (features, windows or word "
                                              "shapes)"),
        (head is None, f"{type(hf_model(model)).__name__} has no packed head (fintune.models.packing lists the "
                       "architectures that have one)"),
    ]
    reason = next((why for failed, why in reasons if failed), None)
    if reason is None:
        return head
    if setting is True:
        raise ConfigError(f"train.packing is true, but this run cannot be packed exactly: {reason}. Set "
                          "train.packing to auto (pack where exact) or false")
    return None


def packed_batcher(encoded: dict[str, Any], head: PackedHead, model: nn.Module, width: int,
                   pad_id: int) -> Batcher:
    """Training batches of ``encoded``'s rows packed into sequences of at most ``width`` tokens."""
    offset = head.position_offset(hf_model(model).config)
    longest = max((len(ids) for ids in encoded["input_ids"]), default=1)
    width = max(width, longest)
    extra_keys = [key for key in ("token_type_ids",) if key in encoded]

    def batcher(part: np.ndarray, epoch: int, step: int) -> tuple[dict[str, torch.Tensor], Any]:
        rows = [encoded["input_ids"][i] for i in part]
        extra = {key: [encoded[key][i] for i in part] for key in extra_keys}
        return pack(rows, width, pad_id, position_offset=offset, mask=not head.causal, extra=extra), part

    return batcher
