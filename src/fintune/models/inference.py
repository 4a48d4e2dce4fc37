"""Turn examples into model input and run a model over it in length-sorted batches."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from fintune.data import Examples
from fintune.data.features import FeatureEncoder
from fintune.errors import DataError
from fintune.training.batching import collate, eval_batches, lengths_of


def encode(tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int) -> dict[str, list[list[int]]]:
    """Token ids without padding; padding happens per batch."""
    enc = tokenizer(texts, truncation=True, max_length=max_length, padding=False)
    return {k: enc[k] for k in ("input_ids", "token_type_ids") if k in enc}


@dataclass
class Inputs:
    """What a model reads from examples: token ids (text, fusion), feature rows (fusion, mlp, gbm)."""

    tokenizer: PreTrainedTokenizerBase | None
    max_length: int
    features: FeatureEncoder | None = None

    def __call__(self, examples: Examples) -> dict[str, Any]:
        encoded: dict[str, Any] = {}
        if self.tokenizer is not None:
            encoded.update(encode(self.tokenizer, examples.texts, self.max_length))
        if self.features is not None:
            if examples.features is None:
                raise DataError("this model reads feature columns, and the input has none", file=examples.source)
            encoded["features"] = self.features.transform(examples.features, examples.source)
        return encoded

    @property
    def pad_id(self) -> int:
        return (self.tokenizer.pad_token_id or 0) if self.tokenizer is not None else 0


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 autocast where the hardware runs it natively ('auto'), else fp32 (None)."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    native = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return torch.bfloat16 if native else None


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Mixed precision context, or nothing when dtype is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@torch.inference_mode()
def model_outputs(model: torch.nn.Module, encoded: dict[str, Any], batch_size: int,
                  task: str, pad_id: int, dtype: torch.dtype | None = None,
                  on_batch: Callable[[int], None] | None = None) -> np.ndarray:
    """Class probabilities (n, k) for classification, predictions (n,) for regression."""
    model.eval()
    device = next(model.parameters()).device
    lengths = lengths_of(encoded)
    chunks: list[tuple[np.ndarray, np.ndarray]] = []
    for index in eval_batches(lengths, batch_size):
        batch = {k: v.to(device) for k, v in collate(encoded, index, pad_id).items()}
        with autocast(device, dtype):
            logits = model(**batch).logits.float()
        out = logits.squeeze(-1) if task == "regression" else torch.softmax(logits, dim=-1)
        chunks.append((index, out.cpu().numpy()))
        if on_batch:
            on_batch(len(index))
    if not chunks:
        return np.zeros((0,), dtype=np.float32)
    result = np.zeros((len(lengths), *chunks[0][1].shape[1:]), dtype=np.float32)
    for index, out in chunks:
        result[index] = out
    return result
