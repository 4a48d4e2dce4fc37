"""Preference tuning's objective (DPO) for the training loop: pairs of answers, their batches,
the reference log-probabilities and the loss.

The reference policy is the model with its adapter disabled, so no second copy sits in
memory; its log-probabilities of every chosen and rejected answer are computed once, before
the first step, as TRL's ``precompute_ref_log_probs`` does. The loss of a pair is

    -log sigmoid(beta * ((log pi(c) - log ref(c)) - (log pi(r) - log ref(r))))

with log pi(answer) the sum over the answer's tokens (and the turn's closing token) given the
prompt: TRL's "sigmoid" loss, checked against TRL's own in the tests. With ``sft_weight`` w > 0
the chosen answers' mean token negative log-likelihood is added, times w (RPO, Pang et al.
2024; TRL's ``loss_type=["sigmoid", "sft"]`` with ``loss_weights=[1, w]``): without it DPO
can lower the likelihood of both answers and drift to answers that neither pair holds.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fintune.data import Examples
from fintune.data.batching import collate, eval_batches, lengths_of
from fintune.errors import FintuneError
from fintune.models.generation import AnswerLoss
from fintune.models.inference import Inputs, autocast


class PairBatches:
    """Batches of pairs: the chosen sequences of the records, then their rejected ones."""

    def __init__(self, chosen: dict[str, list[Any]], rejected: dict[str, list[Any]], pad_id: int) -> None:
        self.n, self.pad_id = len(chosen["input_ids"]), pad_id
        # One table of 2n sequences: record i's chosen at i, its rejected at n + i.
        self.encoded = {key: chosen[key] + rejected[key] for key in ("input_ids", "answer_start")}

    def rows(self, index: np.ndarray) -> np.ndarray:
        return np.concatenate([index, index + self.n])

    def __call__(self, index: np.ndarray, epoch: int = 0, step: int = 0) -> tuple[dict[str, torch.Tensor], Any]:
        return collate(self.encoded, self.rows(index), self.pad_id), index


class PreferenceLoss:
    """The DPO loss of a batch of pairs from the policy's logits over [chosen; rejected]."""

    def __init__(self, scorer: AnswerLoss, reference: torch.Tensor, beta: float, n: int,
                 sft_weight: float = 0.0) -> None:
        self.scorer, self.reference, self.beta, self.n = scorer, reference, beta, n
        self.sft_weight = sft_weight

    def __call__(self, logits: torch.Tensor, index: np.ndarray) -> torch.Tensor:
        rows = np.concatenate([index, index + self.n])
        token_loss, counts = self.scorer.token_losses(logits, rows)
        logps = -token_loss.sum(1)
        ref = self.reference[rows].to(logps.device)
        k = len(index)
        margin = (logps[:k] - ref[:k]) - (logps[k:] - ref[k:])
        loss = -F.logsigmoid(self.beta * margin).mean()
        if self.sft_weight:
            # A token mean over the batch's chosen answers, as TRL's "sft" term computes it.
            loss = loss + self.sft_weight * token_loss[:k].sum() / counts[:k].sum().clamp_min(1)
        return loss


def reference_logps(model: nn.Module, pairs: PairBatches, scorer: AnswerLoss, batch_size: int,
                    dtype: torch.dtype | None = None) -> torch.Tensor:
    """log ref(answer | prompt) of all 2n sequences, the adapter disabled (the model it started
    from), in training's precision (``dtype``: its autocast, None for fp32), so that the first
    step's policy equals its reference."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    was_training = model.training
    model.eval()
    out = torch.zeros(len(pairs.encoded["input_ids"]))
    with torch.inference_mode(), model.disable_adapter():
        for index in eval_batches(lengths_of(pairs.encoded), batch_size):
            batch = {k: v.to(device) for k, v in collate(pairs.encoded, index, pairs.pad_id).items()}
            with autocast(device, dtype):
                logits = model(**batch).logits
            out[index] = scorer.answer_logps(logits, index).float().cpu()
    model.train(was_training)
    return out


def preference_objective(config: Any, model: nn.Module, encode: Inputs, examples: Examples,
                         dtype: torch.dtype | None = None) -> tuple[PreferenceLoss, PairBatches]:
    """DPO's loss and batches for ``examples`` (labels: the chosen answers, ``rejected``: the
    others); ``config`` holds ``beta``, ``sft_weight`` and ``ref_batch_size``."""
    if examples.rejected is None:
        raise FintuneError("strategy dpo learns from pairs of answers: set data.rejected_column (and "
                           "data.label_column for the chosen answer)")
    chosen, rejected = encode(examples), encode(replace(examples, labels=examples.rejected))
    pairs = PairBatches(chosen, rejected, encode.pad_id)
    scorer = AnswerLoss(pairs.encoded)
    reference = reference_logps(model, pairs, scorer, config.ref_batch_size, dtype)
    return PreferenceLoss(scorer, reference, config.beta, len(examples), config.sft_weight), pairs


# A strategy's ``objective`` name -> what builds its loss and batches.
OBJECTIVES = {"preference": preference_objective}


def build_objective(name: str, config: Any, model: nn.Module, encode: Inputs, examples: Examples,
                    dtype: torch.dtype | None = None) -> tuple[Any, Any]:
    """The (objective, batcher) of a strategy that trains on something else than each record's
    answer, by the name the strategy declares."""
    return OBJECTIVES[name](config, model, encode, examples, dtype)
