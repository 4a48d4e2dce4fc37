"""The two pretraining objectives, as batchers and losses for the training loop.

- Masked-language modeling (encoders): a share of the words of each block is chosen (all
  the pieces of a word together with whole-word masking); of the chosen tokens 80% become
  the mask token, 10% a random token, 10% stay, and the loss is on the chosen tokens.
- Next-token prediction (causal LMs): the loss on every real token of the block.

Masks are drawn from a generator seeded by (seed, epoch, step), not a running RNG, so a run
resumed from a checkpoint sees the same masks; held-out blocks get one fixed mask each, so
the loss before and after training is measured on the same task.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import nn

from fintune.config import MaskingConfig
from fintune.data.blocks import BlockStore
from fintune.models.inference import autocast

IGNORE = -100


def _rows(store: BlockStore, index: np.ndarray, pad_id: int) -> tuple[torch.Tensor, torch.Tensor, list[np.ndarray]]:
    rows = [store[int(i)] for i in index]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for j, row in enumerate(rows):
        ids[j, :len(row)] = torch.from_numpy(row.astype(np.int64))
        attention[j, :len(row)] = 1
    return ids, attention, [store.words(int(i)) for i in index]


class MaskedBatches:
    """Batches for masked-language modeling: (inputs, token labels) from block indices."""

    def __init__(self, store: BlockStore, cfg: MaskingConfig, *, mask_id: int, pad_id: int, vocab_size: int,
                 special_ids: set[int], seed: int) -> None:
        self.store, self.cfg, self.seed = store, cfg, seed
        self.mask_id, self.pad_id, self.vocab_size = mask_id, pad_id, vocab_size
        self.special = np.asarray(sorted(special_ids), dtype=np.int64)

    def __call__(self, index: np.ndarray, epoch: int, step: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        return self.masked(index, np.random.default_rng([self.seed, epoch, step]))

    def fixed(self, index: np.ndarray) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Held-out blocks, each with its own mask whatever batch it is in."""
        batches = [self.masked(np.asarray([i]), np.random.default_rng([self.seed, 2 ** 31, int(i)])) for i in index]
        width = max(b[0]["input_ids"].shape[1] for b in batches)

        def stack(key: str, fill: Any) -> torch.Tensor:
            return torch.cat([nn.functional.pad(b[0][key], (0, width - b[0][key].shape[1]), value=fill)
                              for b in batches])
        inputs = {"input_ids": stack("input_ids", self.pad_id), "attention_mask": stack("attention_mask", 0),
                  "positions": stack("positions", False)}
        return inputs, torch.cat([b[1] for b in batches])

    def masked(self, index: np.ndarray, rng: np.random.Generator) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        ids, attention, words = _rows(self.store, index, self.pad_id)
        chosen = torch.zeros_like(ids, dtype=torch.bool)
        for j, starts in enumerate(words):
            row = ids[j, :len(starts)].numpy()
            maskable = ~np.isin(row, self.special)
            chosen[j, :len(starts)] = torch.from_numpy(self._choose(starts, maskable, rng))
        labels = ids[chosen]
        draw = torch.from_numpy(rng.random(ids.shape))
        to_mask = chosen & (draw < self.cfg.replace_mask)
        to_random = chosen & (draw >= self.cfg.replace_mask) & (draw < self.cfg.replace_mask + self.cfg.replace_random)
        inputs = ids.clone()
        inputs[to_mask] = self.mask_id
        random_ids = torch.from_numpy(rng.integers(0, self.vocab_size, size=ids.shape))
        inputs[to_random] = random_ids[to_random]
        return {"input_ids": inputs, "attention_mask": attention, "positions": chosen}, labels

    def _choose(self, starts: np.ndarray, maskable: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Tokens to predict: whole words (a start and the pieces after it) or single tokens."""
        if self.cfg.whole_word:
            word = np.cumsum(starts.astype(bool) | ~maskable)  # a special token is a word of its own
        else:
            word = np.arange(len(starts))
        units = np.unique(word[maskable])
        if len(units) == 0:
            return np.zeros(len(starts), dtype=bool)
        # At least one unit per block, as BERT does, so every block teaches something.
        k = max(1, int(round(self.cfg.probability * len(units))))
        picked = rng.choice(units, size=min(k, len(units)), replace=False)
        return np.isin(word, picked) & maskable


class CausalBatches:
    """Batches for next-token prediction: the block is its own label (padding ignored)."""

    def __init__(self, store: BlockStore, pad_id: int) -> None:
        self.store, self.pad_id = store, pad_id

    def __call__(self, index: np.ndarray, epoch: int, step: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        return self.fixed(index)

    def fixed(self, index: np.ndarray) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        ids, attention, _ = _rows(self.store, index, self.pad_id)
        return {"input_ids": ids, "attention_mask": attention}, torch.where(attention.bool(), ids, IGNORE)


class MaskedPositions(nn.Module):
    """A masked-LM model that runs its head on the masked positions only.

    Hugging Face's ``*ForMaskedLM`` scores every position against the whole vocabulary; for
    MiniLM on 128-token blocks that projection costs as much as the encoder, and 85% of it is
    thrown away. Here the encoder runs on the block and the head on the ~15% chosen tokens.
    ``lm`` is the model itself, so its state dict (checkpoints) and saving stay its own.
    """

    def __init__(self, lm: nn.Module) -> None:
        super().__init__()
        self.lm = lm
        self.prefix = lm.base_model_prefix
        heads = [name for name, _ in lm.named_children() if name != self.prefix]
        if len(heads) != 1:
            raise ValueError(f"{type(lm).__name__}: expected one head beside {self.prefix}, found {heads}")
        self.head = heads[0]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, positions: torch.Tensor) -> Any:
        hidden = getattr(self.lm, self.prefix)(input_ids=input_ids, attention_mask=attention_mask)[0]
        return SimpleNamespace(logits=getattr(self.lm, self.head)(hidden[positions]))

    @property
    def base_model(self) -> nn.Module:
        """The encoder: ``train.head_lr`` then applies to the MLM head (fresh for most sentence
        encoders), the way it applies to a classifier's head."""
        return getattr(self.lm, self.prefix)

    @staticmethod
    def fits(lm: nn.Module) -> bool:
        return sum(1 for name, _ in lm.named_children() if name != lm.base_model_prefix) == 1


def masked_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the masked tokens (logits and labels of those tokens only)."""
    return nn.functional.cross_entropy(logits.float(), labels.to(logits.device))


def next_token_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of each token given the ones before it."""
    labels = labels.to(logits.device)
    return nn.functional.cross_entropy(logits[:, :-1].float().flatten(0, 1), labels[:, 1:].flatten(),
                                       ignore_index=IGNORE)


@torch.inference_mode()
def held_out_loss(model: nn.Module, batches: Any, loss: Any, n: int, batch_size: int,
                  dtype: torch.dtype | None) -> dict[str, float]:
    """Loss and perplexity on the first ``n`` held-out blocks, token-weighted."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, tokens = 0.0, 0
    for start in range(0, n, batch_size):
        inputs, labels = batches.fixed(np.arange(start, min(start + batch_size, n)))
        with autocast(device, dtype):
            logits = model(**{k: v.to(device) for k, v in inputs.items()}).logits
        counted = int((labels[:, 1:] if loss is next_token_loss else labels).ne(IGNORE).sum())  # masked: all count
        if counted:
            total += float(loss(logits, labels)) * counted
            tokens += counted
    model.train(was_training)
    value = total / max(tokens, 1)
    return {"loss": value, "perplexity": math.exp(min(value, 50.0)), "tokens": tokens}
