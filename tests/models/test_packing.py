"""Packed batches give each row the logits and gradients of the padded batch, for every
architecture with a packed head (fintune.models.packing)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from fintune.data.packing import pack
from fintune.models.packing import PACKED_HEADS, PackedForward, packed_head

# initializer_range 0.5: attention that matters (at the default 0.02 the residual stream hides
# a row attending to its neighbours, and a leaking mask would pass).
SIZE = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
        "vocab_size": 40, "num_labels": 3, "initializer_range": 0.5}


def _encoder(config_name: str, model_name: str, **extra: object) -> Callable[[], torch.nn.Module]:
    def build() -> torch.nn.Module:
        import transformers

        config = getattr(transformers, config_name)(**SIZE, **extra)
        return getattr(transformers, model_name)(config)
    return build


# One tiny model per architecture of PACKED_HEADS (a new entry needs a row here).
MODELS: dict[str, Callable[[], torch.nn.Module]] = {
    "BertForSequenceClassification": _encoder("BertConfig", "BertForSequenceClassification"),
    "MPNetForSequenceClassification": _encoder("MPNetConfig", "MPNetForSequenceClassification"),
    "RobertaForSequenceClassification": _encoder("RobertaConfig", "RobertaForSequenceClassification",
                                                 max_position_embeddings=64),
    "XLMRobertaForSequenceClassification": _encoder("XLMRobertaConfig", "XLMRobertaForSequenceClassification",
                                                    max_position_embeddings=64),
    "LlamaForSequenceClassification": _encoder("LlamaConfig", "LlamaForSequenceClassification",
                                               num_key_value_heads=2, pad_token_id=0),
    "Qwen2ForSequenceClassification": _encoder("Qwen2Config", "Qwen2ForSequenceClassification",
                                               num_key_value_heads=2, pad_token_id=0),
}
ROWS = [[2, 5, 6, 7, 3], [2, 8, 3], [2, 9, 10, 11, 12, 13, 14, 3], [2, 15, 3], [2, 16, 17, 18, 3]]


def test_every_packed_architecture_has_a_row() -> None:
    assert set(MODELS) == set(PACKED_HEADS), "add a tiny model to MODELS for each packed architecture"


def _padded(model: torch.nn.Module, rows: list[list[int]]) -> torch.Tensor:
    pad = int(model.config.pad_token_id or 0)
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), pad)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, :len(row)], mask[i, :len(row)] = torch.tensor(row), 1
    return model(input_ids=ids, attention_mask=mask).logits


def _packed(model: torch.nn.Module, rows: list[list[int]], width: int, leak: bool = False) -> torch.Tensor:
    head = packed_head(model)
    assert head is not None
    batch = pack(rows, width, int(model.config.pad_token_id or 0), position_offset=head.position_offset(model.config),
                 mask=not head.causal)
    if leak:  # every token sees the whole packed sequence: what a wrong mask would do
        if head.causal:
            batch["position_ids"] = torch.arange(batch["input_ids"].shape[1]).expand_as(batch["input_ids"])
        else:
            batch["attention_mask"] = torch.ones_like(batch["attention_mask"])
    return PackedForward(model, head)(**batch).logits


@pytest.mark.parametrize("name", sorted(MODELS))
def test_packed_logits_and_gradients_equal_the_padded_ones(name: str) -> None:
    torch.manual_seed(0)
    model = MODELS[name]().eval()  # dropout off: both passes must see the same network
    assert type(model).__name__ == name
    rows = [list(r) for r in ROWS]
    labels = torch.tensor([0, 1, 2, 1, 0])
    padded = _padded(model, rows)
    torch.nn.functional.cross_entropy(padded, labels).backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    # Width 10: the rows go into three sequences, several rows sharing one.
    packed = _packed(model, rows, width=10)
    torch.testing.assert_close(packed, padded, atol=2e-5, rtol=1e-4)
    # The test can fail: rows that see each other give other logits.
    assert (_packed(model, rows, width=10, leak=True) - padded).abs().max() > 1e-2
    torch.nn.functional.cross_entropy(packed, labels).backward()
    for n, p in model.named_parameters():
        if n in expected:
            torch.testing.assert_close(p.grad, expected[n], atol=2e-5, rtol=1e-3, msg=f"{name}: {n}")


def test_a_lora_model_packs_through_its_peft_wrapper() -> None:
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model = MODELS["BertForSequenceClassification"]()
    wrapped = get_peft_model(model, LoraConfig(r=4, target_modules=["query", "value"], modules_to_save=["classifier"],
                                               init_lora_weights=False)).eval()
    assert packed_head(wrapped) is PACKED_HEADS["BertForSequenceClassification"]
    torch.testing.assert_close(_packed(wrapped, ROWS, 12), _padded(wrapped, ROWS), atol=2e-5, rtol=1e-4)


def test_an_architecture_without_a_packed_head_is_trained_padded() -> None:
    from transformers import BertConfig, BertForTokenClassification

    assert packed_head(BertForTokenClassification(BertConfig(**SIZE))) is None
