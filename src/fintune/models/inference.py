"""Turn examples into model input and run a model over it in length-sorted batches."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from fintune.config import LongTextConfig
from fintune.console import console
from fintune.data import Examples
from fintune.data.features import FeatureEncoder
from fintune.errors import DataError
from fintune.data.batching import collate, eval_batches, lengths_of
from fintune.tasks import task_of


# The encoded inputs' per-row flag: read only in part (cut at model.max_length, or past the
# last window of a long document). Scoring ignores it; predict and serve count it.
CUT = "cut"


def encode(tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int,
           pairs: list[str] | None = None) -> dict[str, list[list[int]]]:
    """Token ids without padding; padding happens per batch. With ``pairs``, each text is read
    with its pair as the tokenizer's second segment (a long text is cut, the pair is kept).
    ``cut`` marks the rows read only in part."""
    if pairs is not None:
        enc = tokenizer(texts, pairs, truncation="only_first", max_length=max_length, padding=False)
    else:
        enc = tokenizer(texts, truncation=True, max_length=max_length, padding=False)
    out: dict[str, Any] = {k: enc[k] for k in ("input_ids", "token_type_ids") if k in enc}
    # Only a row that fills max_length can have been cut: tokenize those again, whole.
    full = [i for i, ids in enumerate(out["input_ids"]) if len(ids) >= max_length]
    cut = [False] * len(texts)
    if full:
        again = tokenizer([texts[i] for i in full], [pairs[i] for i in full] if pairs is not None else None,
                          truncation=False, verbose=False)["input_ids"]
        for i, ids in zip(full, again):
            cut[i] = len(ids) > max_length
    out[CUT] = cut
    return out


class Processor(Protocol):
    """One modality's reader: examples in, the arrays a model reads out (by name)."""

    def __call__(self, examples: Examples) -> dict[str, Any]: ...


@dataclass(frozen=True)
class TokenIds:
    """Text (and text pairs) as token ids, cut at ``max_length`` (the rows cut are flagged)."""

    tokenizer: PreTrainedTokenizerBase
    max_length: int

    def __call__(self, examples: Examples) -> dict[str, Any]:
        return encode(self.tokenizer, examples.texts, self.max_length, examples.pairs)


@dataclass(frozen=True)
class PromptTokens:
    """Instruction and chat records through a causal LM's prompt format."""

    prompt: Any  # a PromptFormat (classification) or GenerationFormat
    max_length: int

    def __call__(self, examples: Examples) -> dict[str, Any]:
        return self.prompt.encode(examples, self.max_length)


@dataclass(frozen=True)
class DocumentWindows:
    """Long documents as overlapping windows of ``max_length`` tokens (see fintune.models.long_text)."""

    tokenizer: PreTrainedTokenizerBase
    max_length: int
    windows: LongTextConfig

    def __call__(self, examples: Examples) -> dict[str, Any]:
        from fintune.models.long_text import WINDOWS, window_ids

        windowed = window_ids(self.tokenizer, examples.texts, self.max_length, self.windows)
        if windowed.cut:
            console.print(f"note: {windowed.cut:,} of {len(examples):,} documents of {examples.source} are longer "
                          f"than model.long_text.max_windows ({self.windows.max_windows}) windows; each is read "
                          "up to there")
        return {WINDOWS: windowed.windows, CUT: windowed.cut_rows}


@dataclass(frozen=True)
class FeatureRows:
    """Feature columns through the fitted encoder (standardized numbers, one-hot categories, bins)."""

    encoder: FeatureEncoder

    def __call__(self, examples: Examples) -> dict[str, Any]:
        if examples.features is None:
            raise DataError("this model reads feature columns, and the input has none", file=examples.source)
        return {"features": self.encoder.transform(examples.features, examples.source)}


@dataclass(frozen=True)
class RawTexts:
    """The texts themselves, for a model that reads words without a subword tokenizer."""

    def __call__(self, examples: Examples) -> dict[str, Any]:
        return {"texts": list(examples.texts)}


@dataclass
class Inputs:
    """What a model reads from examples: the arrays of its processors, merged.

    The predictor class picks the processors (``Predictor.processors``): token ids for text,
    prompt tokens for causal LMs, windows for long documents, feature rows for tables. The
    fields say what the processors were built from (the tokenizer's pad id, a causal LM's prompt).
    """

    tokenizer: PreTrainedTokenizerBase | None
    max_length: int
    features: FeatureEncoder | None = None
    # Causal LMs: a PromptFormat (classification) or GenerationFormat wraps each text in its prompt.
    prompt: Any = None
    processors: tuple[Processor, ...] = ()

    @classmethod
    def of_prompt(cls, tokenizer: PreTrainedTokenizerBase | None, max_length: int, prompt: Any) -> Inputs:
        """A causal LM's prompt tokens alone (generation trains and scores on prompt + answer)."""
        return cls(tokenizer, max_length, None, prompt, (PromptTokens(prompt, max_length),))

    def __call__(self, examples: Examples) -> dict[str, Any]:
        encoded: dict[str, Any] = {}
        for processor in self.processors:
            encoded.update(processor(examples))
        return encoded

    def cut(self, examples: Examples) -> np.ndarray:
        """Which rows the model reads only in part: longer than ``max_length`` tokens (a prompt's
        text past its room; a long document past its last window). All False for feature rows."""
        flags = self(examples).get(CUT)
        return np.zeros(len(examples), dtype=bool) if flags is None else np.asarray(flags, dtype=bool)

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


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of the token vectors under the attention mask: the sentence vector."""
    if hidden.dim() == 2:
        return hidden
    if attention_mask is None:
        return hidden.mean(1)
    # Prompt tuning prepends virtual tokens the mask does not cover: pool the real ones.
    hidden = hidden[:, hidden.shape[1] - attention_mask.shape[1]:]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)


def forward_scores(model: torch.nn.Module, batch: dict[str, torch.Tensor],
                   with_vectors: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logits and, when asked, the sentence vector (last hidden layer, mean-pooled)."""
    if not with_vectors:
        return model(**batch).logits, None
    out = model(**batch, output_hidden_states=True)
    if not out.hidden_states:  # a model without hidden states to offer (the causal classifier)
        return out.logits, None
    return out.logits, pool(out.hidden_states[-1], batch.get("attention_mask"))


def activate(logits: torch.Tensor, task: str) -> torch.Tensor:
    """Probabilities (classification) or values (regression) from raw logits, kept in torch
    so that gradients (explanations) flow through them."""
    answer = task_of(task).answer
    if answer == "value":
        return logits.squeeze(-1)
    # Independent labels each get a sigmoid; classes share a softmax.
    return torch.sigmoid(logits) if answer == "labels" else torch.softmax(logits, dim=-1)


def finish(logits: torch.Tensor | np.ndarray, task: str) -> np.ndarray:
    """Probabilities (classification) or values (regression) from raw logits."""
    return activate(torch.as_tensor(logits).float(), task).cpu().numpy()


def in_batches(encoded: dict[str, Any], batch_size: int, pad_id: int,
               run: Callable[[dict[str, torch.Tensor]], tuple[np.ndarray, np.ndarray | None]],
               on_batch: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Run ``run`` over length-sorted padded batches and put the results back in input order."""
    lengths = lengths_of(encoded)
    chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []
    for index in eval_batches(lengths, batch_size):
        out, vectors = run(collate(encoded, index, pad_id))
        chunks.append((index, out, vectors))
        if on_batch:
            on_batch(len(index))
    if not chunks:
        return np.zeros((0,), dtype=np.float32), None
    result = np.zeros((len(lengths), *chunks[0][1].shape[1:]), dtype=np.float32)
    vectors = (np.zeros((len(lengths), chunks[0][2].shape[1]), dtype=np.float32)
               if chunks[0][2] is not None else None)
    for index, out, vec in chunks:
        result[index] = out
        if vectors is not None:
            vectors[index] = vec
    return result, vectors


@torch.inference_mode()
def model_scores(model: torch.nn.Module, encoded: dict[str, Any], batch_size: int, task: str, pad_id: int,
                 dtype: torch.dtype | None = None, on_batch: Callable[[int], None] | None = None,
                 with_vectors: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Class probabilities (n, k) or predictions (n,), and sentence vectors (n, d) if asked."""
    model.eval()
    device = next(model.parameters()).device

    def run(batch: dict[str, torch.Tensor]) -> tuple[np.ndarray, np.ndarray | None]:
        batch = {k: v.to(device) for k, v in batch.items()}
        with autocast(device, dtype):
            logits, vectors = forward_scores(model, batch, with_vectors)
        return finish(logits, task), (vectors.float().cpu().numpy() if vectors is not None else None)

    return in_batches(encoded, batch_size, pad_id, run, on_batch)


def model_outputs(model: torch.nn.Module, encoded: dict[str, Any], batch_size: int,
                  task: str, pad_id: int, dtype: torch.dtype | None = None,
                  on_batch: Callable[[int], None] | None = None) -> np.ndarray:
    """Class probabilities (n, k) for classification, predictions (n,) for regression."""
    return model_scores(model, encoded, batch_size, task, pad_id, dtype, on_batch)[0]
