from __future__ import annotations

import numpy as np

from fintune.data.batching import collate, epoch_batches, eval_batches


def _padding(batches: list[np.ndarray], lengths: np.ndarray) -> int:
    return int(sum(lengths[b].max() * len(b) - lengths[b].sum() for b in batches))


def test_length_grouping_cuts_padding_and_covers_every_row() -> None:
    lengths = np.random.default_rng(0).integers(5, 60, size=1000)
    grouped = epoch_batches(lengths, 32, seed=1, epoch=0, group_by_length=True)
    plain = epoch_batches(lengths, 32, seed=1, epoch=0, group_by_length=False)
    assert sorted(np.concatenate(grouped).tolist()) == list(range(1000))
    assert _padding(grouped, lengths) < 0.2 * _padding(plain, lengths)


def test_order_depends_only_on_seed_and_epoch() -> None:
    lengths = list(range(100))
    a = epoch_batches(lengths, 8, seed=3, epoch=2, group_by_length=True)
    b = epoch_batches(lengths, 8, seed=3, epoch=2, group_by_length=True)
    c = epoch_batches(lengths, 8, seed=3, epoch=3, group_by_length=True)
    assert all((x == y).all() for x, y in zip(a, b))
    assert any((x != y).any() for x, y in zip(a, c) if len(x) == len(y))


def test_collate_pads_to_longest_in_batch() -> None:
    encoded = {"input_ids": [[1, 2, 3], [4], [5, 6]], "token_type_ids": [[0, 0, 0], [0], [0, 0]]}
    batch = collate(encoded, np.array([1, 2]), pad_id=0)
    assert batch["input_ids"].tolist() == [[4, 0], [5, 6]]
    assert batch["attention_mask"].tolist() == [[1, 0], [1, 1]]
    assert batch["token_type_ids"].shape == (2, 2)
    assert [len(b) for b in eval_batches([1, 5, 3], 2)] == [2, 1]


def test_oversampling_evens_out_the_classes_and_keeps_every_row() -> None:
    labels = np.array([0] * 90 + [1] * 10)
    batches = epoch_batches([5] * 100, 16, seed=0, epoch=0, group_by_length=True, labels=labels)
    rows = np.concatenate(batches)
    assert np.bincount(labels[rows]).tolist() == [90, 90]
    assert set(rows.tolist()) == set(range(100))
    again = epoch_batches([5] * 100, 16, seed=0, epoch=0, group_by_length=True, labels=labels)
    assert all((a == b).all() for a, b in zip(batches, again))  # resumable: same (seed, epoch), same rows
