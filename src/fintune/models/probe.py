"""A linear probe on a frozen encoder (``model.kind: probe``): the encoder's mean-pooled,
L2-normalized sentence vector (the pooling and normalization all-MiniLM-L6-v2 was trained
with) feeds one linear layer.

The encoder never changes, so training computes each text's vector once and trains the
layer on the cached vectors: hundreds of epochs cost seconds. That is what makes DP-SGD
usable here (Tramèr & Boneh 2021, "Differentially private learning needs better features"):
the noise is spread over a few hundred head weights, not millions of encoder ones, and the
private optimizer can take the many steps it needs.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from fintune.data.batching import collate, eval_batches, lengths_of

HEAD_FILE = "probe_head.safetensors"


def sentence_vectors(encoder: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the last hidden states over real tokens, L2-normalized."""
    hidden = encoder(input_ids=input_ids, attention_mask=attention_mask)[0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
    return nn.functional.normalize(pooled.float(), dim=-1)


class ProbeHead(nn.Module):
    """The trained part: a linear layer over cached sentence vectors (``features``)."""

    def __init__(self, dim: int, num_labels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, num_labels)

    def forward(self, features: torch.Tensor) -> Any:
        return SimpleNamespace(logits=self.linear(features.float()))


class ProbeModel(nn.Module):
    """Encoder and head together: what predicts, serves and is saved."""

    def __init__(self, encoder: nn.Module, head: ProbeHead) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head

    @property
    def base_model(self) -> nn.Module:
        return self.encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                output_hidden_states: bool = False, **segments: torch.Tensor) -> Any:
        # ``segments``: token_type_ids where the tokenizer gives them; the vectors were computed without.
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                           output_hidden_states=output_hidden_states)
        mask = attention_mask.unsqueeze(-1).to(out[0].dtype)
        pooled = nn.functional.normalize(((out[0] * mask).sum(1) / mask.sum(1).clamp_min(1.0)).float(), dim=-1)
        return SimpleNamespace(logits=self.head(pooled).logits,
                               hidden_states=out.hidden_states if output_hidden_states else None)

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        self.encoder.save_pretrained(folder, safe_serialization=True)
        save_file({k: v.contiguous() for k, v in self.head.state_dict().items()}, str(folder / HEAD_FILE))
        linear = self.head.linear
        (folder / "probe.json").write_text(json.dumps({"dim": linear.in_features, "num_labels": linear.out_features}),
                                           encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path) -> ProbeModel:
        from transformers import AutoModel

        folder = Path(folder)
        shape = json.loads((folder / "probe.json").read_text(encoding="utf-8"))
        head = ProbeHead(shape["dim"], shape["num_labels"])
        head.load_state_dict(load_file(str(folder / HEAD_FILE)))
        return cls(AutoModel.from_pretrained(folder, use_safetensors=True), head)


@torch.inference_mode()
def encode_vectors(encoder: nn.Module, encoded: dict[str, Any], batch_size: int, pad_id: int) -> np.ndarray:
    """The sentence vector of every encoded text, in input order (computed once for training)."""
    encoder.eval()
    device = next(encoder.parameters()).device
    out: np.ndarray | None = None
    for index in eval_batches(lengths_of(encoded), batch_size):
        batch = {k: v.to(device) for k, v in collate(encoded, index, pad_id).items()}
        # token_type_ids are all zero for one text: the encoder's default, as at prediction.
        vectors = sentence_vectors(encoder, batch["input_ids"], batch["attention_mask"]).cpu().numpy()
        if out is None:
            out = np.zeros((len(encoded["input_ids"]), vectors.shape[1]), dtype=np.float32)
        out[index] = vectors
    assert out is not None, "no texts to encode"
    return out
