"""The masking of MLM batches and the masked-positions head."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from fintune.config import MaskingConfig
from fintune.data.blocks import BlockLayout, BlockWriter
from fintune.pretrain.objectives import IGNORE, CausalBatches, MaskedBatches, MaskedPositions, masked_loss
from fintune.strategies.base import head_parameters

CLS, SEP, MASK, PAD = 2, 3, 4, 0


def store(tmp_path: Path, n: int = 40, width: int = 32):
    """Blocks of words of 1-3 pieces: piece ids 10+, word starts flagged."""
    rng = np.random.default_rng(0)
    writer = BlockWriter(tmp_path / "b", BlockLayout(width, CLS, SEP, SEP))
    for _ in range(n):
        ids, starts = [], []
        for _ in range(rng.integers(3, 8)):
            pieces = int(rng.integers(1, 4))
            ids += [int(x) for x in rng.integers(10, 90, size=pieces)]
            starts += [1] + [0] * (pieces - 1)
        writer.add(ids, starts)
    return writer.close()


def batches(s, **cfg: object) -> MaskedBatches:
    return MaskedBatches(s, MaskingConfig(**cfg), mask_id=MASK, pad_id=PAD, vocab_size=100,
                         special_ids={CLS, SEP, MASK, PAD}, seed=1)


def test_whole_words_are_masked_together_and_specials_never(tmp_path: Path) -> None:
    s = store(tmp_path)
    b = batches(s, probability=0.3)
    inputs, labels = b(np.arange(len(s)), epoch=0, step=0)
    positions = inputs["positions"]
    assert labels.numel() == int(positions.sum())
    for row in range(len(s)):
        ids, words = s[row], s.words(row)
        chosen = positions[row, :len(ids)].numpy()
        assert not chosen[np.isin(ids, [CLS, SEP])].any()
        word = np.cumsum(words.astype(bool) | np.isin(ids, [CLS, SEP]))
        for w in np.unique(word[chosen]):
            assert chosen[(word == w) & ~np.isin(ids, [CLS, SEP])].all()  # every piece of a chosen word
    # Of the chosen tokens about 80% become the mask token, 10% a random one, 10% stay.
    original = torch.stack([torch.nn.functional.pad(torch.from_numpy(s[i].astype(np.int64)),
                                                    (0, positions.shape[1] - len(s[i]))) for i in range(len(s))])
    chosen_inputs = inputs["input_ids"][positions]
    assert torch.equal(original[positions], labels)
    share_mask = float((chosen_inputs == MASK).float().mean())
    assert 0.7 < share_mask < 0.9


def test_masks_depend_on_seed_epoch_and_step_only(tmp_path: Path) -> None:
    s = store(tmp_path)
    b = batches(s)
    first, again = b(np.arange(8), 1, 5), b(np.arange(8), 1, 5)
    assert torch.equal(first[0]["input_ids"], again[0]["input_ids"])
    other = b(np.arange(8), 1, 6)
    assert not torch.equal(first[0]["positions"], other[0]["positions"])
    # Held-out blocks keep one mask whatever batch they are read in.
    alone, together = b.fixed(np.asarray([3])), b.fixed(np.asarray([1, 3]))
    width = alone[0]["positions"].shape[1]
    assert torch.equal(alone[0]["positions"][0], together[0]["positions"][1, :width])


def test_causal_labels_are_the_block_with_padding_ignored(tmp_path: Path) -> None:
    s = store(tmp_path)
    inputs, labels = CausalBatches(s, PAD).fixed(np.asarray([0, len(s) - 1]))
    assert torch.equal(labels[inputs["attention_mask"].bool()], inputs["input_ids"][inputs["attention_mask"].bool()])
    assert (labels[~inputs["attention_mask"].bool()] == IGNORE).all()


def test_the_head_runs_on_masked_positions_only() -> None:
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    lm = BertForMaskedLM(BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                    intermediate_size=32)).eval()
    net = MaskedPositions(lm)
    ids = torch.randint(5, 100, (2, 9))
    mask = torch.ones_like(ids)
    positions = torch.zeros_like(ids, dtype=torch.bool)
    positions[0, 2] = positions[1, 5] = True
    out = net(input_ids=ids, attention_mask=mask, positions=positions).logits
    full = lm(input_ids=ids, attention_mask=mask).logits[positions]
    assert out.shape == (2, 100) and torch.allclose(out, full, atol=1e-5)
    assert masked_loss(out, ids[positions]).item() > 0
    # train.head_lr reaches the MLM head, not the encoder (nor the decoder tied to the embeddings).
    names = [n for n, _ in head_parameters(net)]
    assert names and all(n.startswith("lm.cls.") for n in names)
    assert set(net.state_dict()) == {f"lm.{k}" for k in lm.state_dict()}
