"""Fusion of text and tabular features, and the features-only MLP.

:class:`FusionModel` mean-pools the encoder's last hidden states into a sentence vector
(the pooling all-MiniLM-L6-v2 was trained with), layer-normalizes it so its scale matches
the standardized features, joins it with the row's feature vector and classifies with a
one-hidden-layer MLP. Without an encoder it is the plain MLP baseline on the features.

Saved as the encoder in Hugging Face format (it loads with ``AutoModel`` alone) plus
``fusion_head.safetensors``; :func:`load_fusion` rebuilds the whole model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from fintune.config import ModelConfig
from fintune.models.backbones import backbone_config, load_error, resolve_backbone

HEAD_FILE = "fusion_head.safetensors"


class FusionModel(nn.Module):
    """Encoder sentence vector (optional) + feature vector -> MLP head (+ linear path) -> logits."""

    def __init__(self, encoder: PreTrainedModel | None, n_features: int, num_labels: int,
                 hidden: int = 256, dropout: float = 0.1, text_dim: int | None = 32) -> None:
        super().__init__()
        self.encoder = encoder
        width = encoder.config.hidden_size if encoder is not None else 0
        self.text_norm = nn.LayerNorm(width) if encoder is not None else None
        # The sentence vector is projected to a few dimensions before joining the features:
        # 384 raw dimensions next to a few dozen features let a small table overfit on text.
        self.text_proj = (nn.Sequential(nn.Dropout(dropout), nn.Linear(width, text_dim))
                          if encoder is not None and text_dim else None)
        text_width = text_dim if self.text_proj is not None else width
        self.classifier = nn.Sequential(
            nn.Linear(text_width + n_features, hidden), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden, num_labels),
        )
        # "Wide and deep" (Cheng et al. 2016): a linear path on the features beside the MLP,
        # so the model is never worse off than the scorecard-style linear model it joins.
        self.wide = nn.Linear(n_features, num_labels) if n_features else None
        self.shape = {"n_features": n_features, "num_labels": num_labels, "hidden": hidden, "dropout": dropout,
                      "text_dim": text_dim}

    @property
    def base_model(self) -> PreTrainedModel | None:
        """The encoder body, where the strategies find the transformer layers."""
        return self.encoder

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None,
                features: torch.Tensor | None = None,
                output_hidden_states: bool = False) -> SequenceClassifierOutput:
        parts = []
        if self.encoder is not None:
            kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                kwargs["token_type_ids"] = token_type_ids
            hidden = self.encoder(**kwargs).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
            pooled = self.text_norm(pooled)
            parts.append(self.text_proj(pooled) if self.text_proj is not None else pooled)
        if features is not None:
            features = features.to(parts[0].dtype if parts else features.dtype)
            parts.append(features)
        joined = torch.cat(parts, dim=-1)
        logits = self.classifier(joined)
        if self.wide is not None and features is not None:
            logits = logits + self.wide(features)
        # The "hidden state" a caller may ask for is the joined vector the head reads:
        # the sentence vector (projected) and the encoded row, the input drift is measured on.
        return SequenceClassifierOutput(logits=logits, hidden_states=(joined,) if output_hidden_states else None)

    def head_state(self) -> dict[str, torch.Tensor]:
        """Weights outside the encoder: the layer norm and the MLP."""
        return {k: v.detach().contiguous() for k, v in self.state_dict().items() if not k.startswith("encoder.")}

    def save(self, folder: str | Path) -> None:
        """Encoder in Hugging Face format (if any) plus the head's weights."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.encoder is not None:
            self.encoder.save_pretrained(folder, safe_serialization=True)
        save_file(self.head_state(), str(folder / HEAD_FILE))


def load_encoder(path: str, config: Any, trust_remote_code: bool = False) -> PreTrainedModel:
    """The bare encoder (no task head) in safetensors weights."""
    return AutoModel.from_pretrained(path, config=config, use_safetensors=True,
                                     trust_remote_code=trust_remote_code)


def new_encoder(cfg: ModelConfig) -> PreTrainedModel:
    """The backbone's bare encoder for a new model (``model.num_layers`` and ``model.dropout``
    applied); a backbone that will not load is an error saying what to check."""
    try:
        return load_encoder(resolve_backbone(cfg.backbone), backbone_config(cfg), cfg.trust_remote_code)
    except (OSError, ValueError) as exc:
        raise load_error(cfg.backbone, exc) from None


def load_fusion(folder: str | Path, shape: dict[str, Any], with_encoder: bool) -> FusionModel:
    """Rebuild a saved :class:`FusionModel` from its folder and the shape kept in fintune.json."""
    folder = Path(folder)
    encoder = load_encoder(str(folder), AutoConfig.from_pretrained(folder)) if with_encoder else None
    model = FusionModel(encoder, **shape)
    missing, unexpected = model.load_state_dict(load_file(str(folder / HEAD_FILE)), strict=False)
    if unexpected or [k for k in missing if not k.startswith("encoder.")]:
        raise ValueError(f"{folder / HEAD_FILE} does not fit the model: missing {missing}, unexpected {unexpected}")
    return model
