"""Packed batches: several rows in one sequence, attention kept inside each row.

Tweets and headlines are 20-30 tokens; a batch padded to its longest row spends a share of
its compute on pad tokens, and 32 short rows make small matrix products. Packing puts the
rows of a batch end to end into as few sequences of at most ``width`` tokens as first-fit
decreasing allows, restarts the position ids at each row, and restricts attention to the
row a token belongs to. Each row is then computed exactly as it would be alone (the tests
check logits and gradients against the padded batch), in fewer, fuller sequences.

Two ways of keeping attention inside a row, as the model reads them:
- ``mask``: a block-diagonal boolean mask (batch, 1, L, L) that encoders take as their
  attention mask (transformers passes a 4D mask through as it is);
- position ids alone: decoders (Llama, Qwen) find the rows from where the position ids
  restart and build the packed causal mask themselves (transformers' padding-free path).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def first_fit(lengths: Sequence[int], width: int) -> list[list[int]]:
    """Row positions grouped into sequences of at most ``width`` tokens, longest rows first,
    each into the first sequence with room (first-fit decreasing)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    bins: list[list[int]] = []
    room: list[int] = []
    for i in order:
        n = lengths[i]
        for b, free in enumerate(room):
            if n <= free:
                bins[b].append(i)
                room[b] -= n
                break
        else:
            bins.append([i])
            room.append(width - n)
    return bins


def pack(rows: Sequence[Sequence[int]], width: int, pad_id: int, *, position_offset: int = 0, mask: bool = True,
         extra: dict[str, Sequence[Sequence[int]]] | None = None) -> dict[str, torch.Tensor]:
    """``rows`` (token ids) packed into sequences of at most ``width`` tokens.

    Returns ``input_ids`` and ``position_ids`` (batch, L), where L is the fullest sequence;
    ``row_first`` and ``row_last``: for each row, in the order given, the flat position
    (sequence * L + offset) of its first and last token, where a classifier pools; with
    ``mask`` the block-diagonal ``attention_mask`` (batch, 1, L, L). A pad token attends to
    itself only, so no softmax row is empty. ``extra`` per-token inputs (segment ids) are
    packed beside the ids, padded with 0. ``position_offset``: the position of a row's first
    token (RoBERTa and MPNet count from the pad id + 1).
    """
    lengths = [len(r) for r in rows]
    if max(lengths, default=0) > width:
        raise ValueError(f"a row of {max(lengths)} tokens does not fit a packed sequence of {width}")
    bins = first_fit(lengths, width)
    longest = max(sum(lengths[i] for i in members) for members in bins)
    ids = np.full((len(bins), longest), pad_id, dtype=np.int64)
    positions = np.zeros((len(bins), longest), dtype=np.int64)
    owner = np.full((len(bins), longest), -1, dtype=np.int64)
    others = {key: np.zeros((len(bins), longest), dtype=np.int64) for key in (extra or {})}
    first, last = np.empty(len(rows), dtype=np.int64), np.empty(len(rows), dtype=np.int64)
    for b, members in enumerate(bins):
        at = 0
        for i in members:
            n = lengths[i]
            ids[b, at:at + n] = rows[i]
            positions[b, at:at + n] = np.arange(n) + position_offset
            owner[b, at:at + n] = i
            for key, values in (extra or {}).items():
                others[key][b, at:at + n] = values[i]
            first[i], last[i] = b * longest + at, b * longest + at + n - 1
            at += n
        # Pads continue counting, so position-id packing reads them as one more (ignored) row.
        positions[b, at:] = np.arange(longest - at) + position_offset
    batch = {"input_ids": torch.from_numpy(ids), "position_ids": torch.from_numpy(positions),
             "row_first": torch.from_numpy(first), "row_last": torch.from_numpy(last),
             **{key: torch.from_numpy(v) for key, v in others.items()}}
    if mask:
        owners = torch.from_numpy(owner)
        same = owners[:, :, None] == owners[:, None, :]
        pads = owners < 0
        # A pad sees only itself: its output is never read, but an all-masked row would be NaN.
        same &= ~(pads[:, :, None] | pads[:, None, :])
        same |= torch.eye(longest, dtype=torch.bool)[None] & pads[:, :, None]
        batch["attention_mask"] = same[:, None]
    return batch

