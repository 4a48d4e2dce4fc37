"""train.packing: whether a run trains on packed batches, and how.

Packing is exact (the same logits, losses and gradients as padding, see
fintune.data.packing), so ``auto`` turns it on wherever the model, the objective, the strategy
and the loop allow it, and says nothing where they do not; ``true`` makes the reason an error.
Two forms: a sequence classifier pools each row's own token through its own head
(:class:`~fintune.models.packing.PackedForward`); a causal LM being instruction-tuned scores
each row's answer tokens at their packed positions (:class:`PackedAnswerLoss`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from fintune.data.packing import pack
from fintune.errors import ConfigError
from fintune.models.generation import AnswerLoss
from fintune.models.inference import CUT
from fintune.models.packing import PACKED_LMS, PackedForward, PackedHead, PackedLM, hf_model, packed_head
from fintune.strategies import Strategy
from fintune.training.objectives import Batcher, Objective, Supervised

# What a packed batch carries: token ids and segment ids (and the rows cut at max_length);
# instruction records also where each answer starts and which tokens are learned.
CLASSIFIER_INPUTS = frozenset({"input_ids", "token_type_ids", CUT})
ANSWER_INPUTS = frozenset({"input_ids", "answer_start", "loss_mask", CUT})


@dataclass
class Packing:
    """A packed run's batches, forward and objective (each replaces the padded one)."""

    batcher: Batcher
    forward: nn.Module
    objective: Objective


def plan_packing(setting: bool | Literal["auto"], model: nn.Module, strategy: Strategy, encoded: dict[str, Any],
                 objective: Objective, *, width: int, pad_id: int, custom_batches: bool, dp: bool,
                 distributed: bool, grouped: bool) -> Packing | None:
    """The packing this run trains with, or None (padded batches); an error where
    ``train.packing: true`` asks for what cannot be packed exactly.

    ``auto`` packs a classifier's batches only where they are not length-grouped (``grouped``):
    grouped batches are already nearly free of pads, and packing them makes each sequence's
    attention longer (measured on MiniLM here: 14% slower; benchmarks/speed_levers.py).
    Instruction records pack even when grouped: 9% more tokens/s measured on SmolLM2
    (benchmarks/packing_sft.py), where the decoder masks from position ids alone."""
    if setting is False:
        return None
    head, name = packed_head(model), type(hf_model(model)).__name__
    classifier = isinstance(objective, Supervised) and head is not None and set(encoded) <= CLASSIFIER_INPUTS
    answers = isinstance(objective, AnswerLoss) and name in PACKED_LMS and set(encoded) <= ANSWER_INPUTS
    if setting == "auto" and grouped and classifier:
        return None
    reasons = [
        (custom_batches, "its objective builds batches of its own (preference pairs, masked tokens)"),
        (dp, "DP-SGD computes each example's gradient from a padded row"),
        (distributed, "several processes train through DistributedDataParallel's own forward"),
        (not strategy.packable, f"strategy '{strategy.name}' adds virtual tokens in its own forward"),
        (not (classifier or answers), f"{name} trained on this task has no packed form (fintune.models.packing lists "
                                      "the sequence classifiers and causal LMs that have one; features, windows, "
                                      "word shapes and label-word prompts are read padded)"),
    ]
    reason = next((why for failed, why in reasons if failed), None)
    if reason is not None:
        if setting is True:
            raise ConfigError(f"train.packing is true, but this run cannot be packed exactly: {reason}. Set "
                              "train.packing to auto (pack where exact) or false")
        return None
    width = max(width, max((len(ids) for ids in encoded["input_ids"]), default=1))
    if classifier:
        assert head is not None
        return Packing(_batcher(encoded, width, pad_id, head.position_offset(hf_model(model).config), not head.causal),
                       PackedForward(model, head), objective)
    assert isinstance(objective, AnswerLoss)
    answers = PackedAnswerLoss(objective)
    return Packing(_batcher(encoded, width, pad_id, 0, False, answers=answers), PackedLM(model), answers)


def _batcher(encoded: dict[str, Any], width: int, pad_id: int, offset: int, mask: bool,
             answers: PackedAnswerLoss | None = None) -> Batcher:
    """Batches of ``encoded``'s rows packed into sequences of at most ``width`` tokens; with
    ``answers`` the batch also says which positions need logits, and the objective gets the
    answer tokens' layout instead of the rows."""
    extra_keys = [key for key in ("token_type_ids",) if key in encoded]

    def batcher(part: np.ndarray, epoch: int, step: int) -> tuple[dict[str, torch.Tensor], Any]:
        rows = [encoded["input_ids"][i] for i in part]
        extra = {key: [encoded[key][i] for i in part] for key in extra_keys}
        batch = pack(rows, width, pad_id, position_offset=offset, mask=mask, extra=extra)
        if answers is None:
            return batch, part
        layout = answers.layout(part, batch["row_first"], batch["input_ids"].shape)
        batch["keep"] = layout.keep
        return batch, layout

    return batcher


@dataclass
class AnswerLayout:
    """Where a packed batch's answer tokens are predicted: ``keep`` marks those positions
    (batch, L); the model returns their logits flattened in row-major order, and the
    ``order``-th of them predicts ``targets``, for the ``owners``-th record of the batch."""

    keep: torch.Tensor
    order: torch.Tensor
    targets: torch.Tensor
    owners: torch.Tensor
    records: int


class PackedAnswerLoss:
    """:class:`AnswerLoss` on packed sequences: each answer token is predicted at the packed
    position before it, inside its own row (a row's first token is never a target, so no loss
    crosses a boundary), averaged per record and then over records, as padded."""

    def __init__(self, loss: AnswerLoss) -> None:
        self.loss = loss

    def layout(self, index: np.ndarray, first: torch.Tensor, shape: torch.Size) -> AnswerLayout:
        """The answer tokens of the rows ``index``, packed from the flat positions ``first``
        into sequences of ``shape``."""
        positions, targets, owners = [], [], []
        for j, i in enumerate(index):
            learned, start = self.loss.learned(i), int(first[j])
            positions += [start + t - 1 for t in learned]
            targets += [self.loss.ids[i][t] for t in learned]
            owners += [j] * len(learned)
        flat = torch.tensor(positions, dtype=torch.long)
        keep = torch.zeros(shape.numel(), dtype=torch.bool)
        keep[flat] = True
        # Rank of each position among the kept ones: where its logits land in the output.
        rank = torch.cumsum(keep.long(), 0) - 1
        return AnswerLayout(keep.reshape(shape), rank[flat], torch.tensor(targets, dtype=torch.long),
                            torch.tensor(owners, dtype=torch.long), len(index))

    def __call__(self, logits: torch.Tensor, layout: AnswerLayout) -> torch.Tensor:
        device = logits.device
        flat = logits.reshape(-1, logits.shape[-1])  # (kept positions, vocabulary)
        token_loss = nn.functional.cross_entropy(flat[layout.order.to(device)].float(), layout.targets.to(device),
                                                 reduction="none")
        owner = layout.owners.to(device)
        sums = torch.zeros(layout.records, device=device).index_add(0, owner, token_loss)
        counts = torch.zeros(layout.records, device=device).index_add(0, owner, torch.ones_like(token_loss))
        return (sums / counts.clamp_min(1)).mean()
