"""Batches for the training loop: dynamic padding and length-grouped order.

Financial tweets and headlines are short and vary in length; padding every batch to a
fixed length spends most of the compute on pad tokens. Grouping texts of similar length
into the same batch and padding to the longest in the batch removes most of that waste.
The order depends only on (seed, epoch), so a resumed run sees the same batches.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

MEGABATCH = 50  # batches sorted together; large enough to group, small enough to stay random


def oversample(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Row indices in which every class appears as often as the largest one.

    Minority rows are drawn with replacement; every original row stays in.
    """
    counts = np.bincount(labels)
    parts = []
    for cls, count in enumerate(counts):
        rows = np.flatnonzero(labels == cls)
        if len(rows):
            parts += [rows, rng.choice(rows, size=counts.max() - count, replace=True)]
    return np.concatenate(parts)


def epoch_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int,
                  group_by_length: bool, labels: np.ndarray | None = None,
                  batch_tokens: int | None = None) -> list[np.ndarray]:
    """The batches of one epoch as index arrays, reproducible from (seed, epoch).

    With ``labels`` the epoch is oversampled so every class is as frequent as the largest.
    With ``batch_tokens`` each batch holds at most that many tokens (at least one row) instead
    of ``batch_size`` rows.
    """
    rng = np.random.default_rng([seed, epoch])
    pool = oversample(labels, rng) if labels is not None else np.arange(len(lengths))
    order = pool[rng.permutation(len(pool))]
    lengths_arr = np.asarray(lengths)

    def cut(rows: np.ndarray) -> list[np.ndarray]:
        if batch_tokens is not None:
            return token_budget_batches(rows, lengths_arr, batch_tokens)
        return [rows[i:i + batch_size] for i in range(0, len(rows), batch_size)]

    if not group_by_length:
        return cut(order)
    batches: list[np.ndarray] = []
    span = batch_size * MEGABATCH
    for start in range(0, len(order), span):
        chunk = order[start:start + span]
        batches.extend(cut(chunk[np.argsort(-lengths_arr[chunk], kind="stable")]))
    # Shuffle batch order so the model does not see all long texts at once.
    return [batches[i] for i in rng.permutation(len(batches))]


def token_budget_batches(order: np.ndarray, lengths: np.ndarray, budget: int) -> list[np.ndarray]:
    """``order`` cut into consecutive batches of at most ``budget`` tokens each (a row longer
    than the budget is a batch of its own)."""
    batches: list[np.ndarray] = []
    start, used = 0, 0
    for k, i in enumerate(order):
        n = int(lengths[i])
        if k > start and used + n > budget:
            batches.append(order[start:k])
            start, used = k, 0
        used += n
    if start < len(order):
        batches.append(order[start:])
    return batches


def eval_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Length-sorted batches for inference; callers put outputs back with the indices."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def lengths_of(encoded: dict) -> list[int]:
    """Token counts per row (1 per row for a features-only input), for length grouping."""
    if "lengths" in encoded:  # rows read from disk (packed pretraining blocks) carry their lengths
        return [int(n) for n in encoded["lengths"]]
    if "input_ids" in encoded:
        return [len(ids) for ids in encoded["input_ids"]]
    if "windows" in encoded:  # a long document: the tokens of all its windows
        return [sum(len(w) for w in doc) for doc in encoded["windows"]]
    return [1] * len(encoded["features"])


def collate(encoded: dict, index: np.ndarray, pad_id: int) -> dict[str, torch.Tensor]:
    """Pad the selected rows to the longest among them; feature rows are taken as they are."""
    batch: dict[str, torch.Tensor] = {}
    if "features" in encoded:
        batch["features"] = torch.from_numpy(encoded["features"][index])
    if "windows" in encoded:
        return _collate_windows(encoded["windows"], index, pad_id)
    if "input_ids" not in encoded:
        return batch
    rows = [encoded["input_ids"][i] for i in index]
    width = max(len(r) for r in rows)
    batch["input_ids"], batch["attention_mask"] = _padded(rows, pad_id)
    # Other per-token inputs, padded with 0: segment ids, and the word shapes of a tagger.
    for key in ("token_type_ids", "shape_ids"):
        if key in encoded:
            values = torch.zeros((len(rows), width), dtype=torch.long)
            for j, i in enumerate(index):
                row = encoded[key][i]
                values[j, :len(row)] = torch.tensor(row)
            batch[key] = values
    return batch


def _padded(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids padded to the longest row, and the attention mask."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for j, row in enumerate(rows):
        ids[j, :len(row)] = torch.tensor(row)
        mask[j, :len(row)] = 1
    return ids, mask


def _collate_windows(docs: list[list[list[int]]], index: np.ndarray, pad_id: int) -> dict[str, torch.Tensor]:
    """Every window of the selected documents as rows, and ``doc_index``: the position in the
    batch of the document each window belongs to (see :mod:`fintune.models.long_text`)."""
    rows = [window for i in index for window in docs[i]]
    owner = [j for j, i in enumerate(index) for _ in docs[i]]
    ids, mask = _padded(rows, pad_id)
    return {"input_ids": ids, "attention_mask": mask, "doc_index": torch.tensor(owner, dtype=torch.long)}
