"""DPO (Rafailov et al. 2023): preference tuning of a causal LM on {prompt, chosen, rejected}.

A LoRA adapter trains on the backbone (typically an instruction-tuned model: a merged SFT run's
``model`` folder, or an instruct model from the catalogue). The reference policy is the same
model with the adapter disabled, so no second copy sits in memory; its log-probabilities of
every chosen and rejected answer are computed once, before the first step, as TRL's
``precompute_ref_log_probs`` does. The loss of a pair is

    -log sigmoid(beta * ((log pi(c) - log ref(c)) - (log pi(r) - log ref(r))))

with log pi(answer) the sum over the answer's tokens (and the turn's closing token) given the
prompt: TRL's "sigmoid" loss, checked against TRL's own in the tests.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from fintune.errors import FintuneError
from fintune.strategies.base import register
from fintune.strategies.lora import Lora, LoraStrategyConfig

if TYPE_CHECKING:
    import torch
    from torch import nn


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

    def training_objective(self, model: nn.Module, encode: Any, examples: Any,
                           dtype: Any = None) -> tuple[Any, Any]:
        if examples.rejected is None:
            raise FintuneError("strategy dpo learns from pairs of answers: set data.rejected_column (and "
                               "data.label_column for the chosen answer)")
        from fintune.models.generation import AnswerLoss

        cfg: DpoStrategyConfig = self.config  # type: ignore[assignment]
        chosen, rejected = encode(examples), encode(replace(examples, labels=examples.rejected))
        pairs = PairBatches(chosen, rejected, encode.pad_id)
        scorer = AnswerLoss(pairs.encoded)
        reference = reference_logps(model, pairs, scorer, cfg.ref_batch_size, dtype)
        return PreferenceLoss(scorer, reference, cfg.beta, len(examples)), pairs


class PairBatches:
    """Batches of pairs: the chosen sequences of the records, then their rejected ones."""

    def __init__(self, chosen: dict[str, list[Any]], rejected: dict[str, list[Any]], pad_id: int) -> None:
        self.n, self.pad_id = len(chosen["input_ids"]), pad_id
        # One table of 2n sequences: record i's chosen at i, its rejected at n + i.
        self.encoded = {key: chosen[key] + rejected[key] for key in ("input_ids", "answer_start")}

    def rows(self, index: np.ndarray) -> np.ndarray:
        return np.concatenate([index, index + self.n])

    def __call__(self, index: np.ndarray, epoch: int = 0, step: int = 0) -> tuple[dict[str, torch.Tensor], Any]:
        from fintune.data.batching import collate

        return collate(self.encoded, self.rows(index), self.pad_id), index


class PreferenceLoss:
    """The DPO loss of a batch of pairs from the policy's logits over [chosen; rejected]."""

    def __init__(self, scorer: Any, reference: torch.Tensor, beta: float, n: int) -> None:
        self.scorer, self.reference, self.beta, self.n = scorer, reference, beta, n

    def __call__(self, logits: torch.Tensor, index: np.ndarray) -> torch.Tensor:
        import torch.nn.functional as F

        rows = np.concatenate([index, index + self.n])
        logps = self.scorer.answer_logps(logits, rows)
        ref = self.reference[rows].to(logps.device)
        margin = (logps[:len(index)] - ref[:len(index)]) - (logps[len(index):] - ref[len(index):])
        return -F.logsigmoid(self.beta * margin).mean()


def reference_logps(model: nn.Module, pairs: PairBatches, scorer: Any, batch_size: int,
                    dtype: Any = None) -> torch.Tensor:
    """log ref(answer | prompt) of all 2n sequences, the adapter disabled (the model it started
    from), in training's precision (``dtype``: its autocast, None for fp32), so that the first
    step's policy equals its reference."""
    import torch

    from fintune.data.batching import collate, eval_batches, lengths_of
    from fintune.models.inference import autocast

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
