"""Packing rows into sequences (fintune.data.packing) and batches by a token budget."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fintune.data.batching import epoch_batches, token_budget_batches
from fintune.data.packing import first_fit, pack


def test_first_fit_fills_sequences_up_to_the_width_and_keeps_every_row_once() -> None:
    lengths = [7, 3, 5, 2, 8, 1, 4]
    bins = first_fit(lengths, 10)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 10 for b in bins)
    assert len(bins) == 3  # 30 tokens in sequences of 10: as few as possible here


def test_pack_restarts_positions_marks_each_row_and_masks_across_rows() -> None:
    rows = [[11, 12, 13], [21, 22], [31, 32, 33, 34]]
    batch = pack(rows, 6, pad_id=0, position_offset=2, extra={"token_type_ids": [[0, 0, 1], [0, 1], [0, 0, 0, 1]]})
    ids, positions, mask = batch["input_ids"], batch["position_ids"], batch["attention_mask"]
    flat = ids.reshape(-1)
    for i, row in enumerate(rows):
        first, last = int(batch["row_first"][i]), int(batch["row_last"][i])
        assert flat[first:last + 1].tolist() == row
        assert positions.reshape(-1)[first:last + 1].tolist() == [2 + k for k in range(len(row))]
        assert batch["token_type_ids"].reshape(-1)[first:last + 1].tolist() == [[0, 0, 1], [0, 1], [0, 0, 0, 1]][i]
    assert ids.shape[1] == 6 and mask.shape == (ids.shape[0], 1, 6, 6) and mask.dtype == torch.bool
    # A token sees exactly the tokens of its own row; a pad only itself.
    owner = torch.full(ids.shape, -1)
    for i, row in enumerate(rows):
        first = int(batch["row_first"][i])
        owner.view(-1)[first:first + len(row)] = i
    for b in range(ids.shape[0]):
        for q in range(6):
            seen = mask[b, 0, q].nonzero().view(-1).tolist()
            assert seen == ([k for k in range(6) if owner[b, k] == owner[b, q]] if owner[b, q] >= 0 else [q])


def test_a_row_longer_than_the_width_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        pack([[1] * 9], 8, pad_id=0)


def test_a_token_budget_cuts_batches_by_tokens_and_a_long_row_goes_alone() -> None:
    lengths = np.array([5, 5, 5, 12, 3, 3, 3, 3])
    batches = token_budget_batches(np.arange(8), lengths, 10)
    assert [b.tolist() for b in batches] == [[0, 1], [2], [3], [4, 5, 6], [7]]


def test_token_budget_epochs_are_reproducible_and_hold_every_row() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 60, size=500).tolist()
    first = epoch_batches(lengths, 32, seed=1, epoch=2, group_by_length=True, batch_tokens=400)
    again = epoch_batches(lengths, 32, seed=1, epoch=2, group_by_length=True, batch_tokens=400)
    assert [b.tolist() for b in first] == [b.tolist() for b in again]  # a resumed run sees the same batches
    assert sorted(np.concatenate(first).tolist()) == list(range(500))
    assert all(sum(lengths[i] for i in b) <= 400 for b in first if len(b) > 1)
    sizes = [len(b) for b in first]
    assert max(sizes) > 2 * min(sizes)  # short rows come many to a batch, long rows few
