"""Long documents (``model.kind: long_text``): overlapping windows, each encoded, pooled per document.

An annual-report section or an earnings-call transcript runs to thousands of tokens; an
encoder reads 512 at most, and truncation keeps only the opening, which in a 10-K is
boilerplate. Each document is cut into windows of ``model.max_length`` tokens whose starts
are ``stride`` tokens apart (windows overlap when the stride is less than a window, so a
sentence cut by one window is whole in the next), every window is encoded and mean-pooled,
and the window vectors become one document vector: their mean, their element-wise max, or
an attention-weighted sum with one learned score per window (Pappagari et al. 2019,
"Hierarchical transformers for long document classification", pool the same way).

A batch holds whole documents: the collated batch carries every window of its documents and
``doc_index``, the document each window belongs to, so the loop, evaluation and serving
batch documents as they batch texts. Only the token ids of the corpus are held; window
activations live for one batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from fintune.config import LongTextConfig

WINDOWS = "windows"  # the encoded key: per document, its windows' token ids
HEAD_FILE = "long_text_head.safetensors"
SHAPE_FILE = "long_text.json"
WINDOW_BATCH = 64  # windows encoded at once at inference, whatever the number of documents


@dataclass
class Windowed:
    """Token ids per document and window, with the start token of each window and which
    documents were cut at ``max_windows``."""

    windows: list[list[list[int]]]
    starts: list[list[int]]
    cut_rows: list[bool]

    @property
    def cut(self) -> int:
        """How many documents were cut at ``max_windows``."""
        return sum(self.cut_rows)


def window_ids(tokenizer: Any, texts: list[str], max_length: int, cfg: LongTextConfig) -> Windowed:
    """Each text as windows of at most ``max_length`` tokens (special tokens included).

    The tokenizer's own overflow windows do the cutting (``return_overflowing_tokens`` with
    an overlap of the window's content less the stride), so each window is tokenized as the
    encoder's tokenizer would tokenize any input."""
    content = max_length - tokenizer.num_special_tokens_to_add()
    enc = tokenizer(texts, truncation=True, max_length=max_length, stride=content - cfg.stride,
                    return_overflowing_tokens=True, padding=False)
    windows: list[list[list[int]]] = [[] for _ in texts]
    for ids, doc in zip(enc["input_ids"], enc["overflow_to_sample_mapping"]):
        windows[doc].append(ids)
    cut = [len(w) > cfg.max_windows for w in windows]
    windows = [w[:cfg.max_windows] for w in windows]
    return Windowed(windows, [[k * cfg.stride for k in range(len(w))] for w in windows], cut)


class WindowPooling(nn.Module):
    """Window vectors to document vectors; ``doc_index`` says which document each window is of."""

    def __init__(self, dim: int, how: str) -> None:
        super().__init__()
        self.how = how
        self.score = nn.Linear(dim, 1) if how == "attention" else None

    def forward(self, vectors: torch.Tensor, doc_index: torch.Tensor,
                n_docs: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Document vectors (n_docs, dim) and each window's weight in its document (n_windows,)."""
        width = vectors.shape[1]
        spread = doc_index[:, None].expand(-1, width)
        if self.how == "max":
            out = vectors.new_full((n_docs, width), float("-inf")).scatter_reduce(0, spread, vectors, "amax")
            # A window's weight: the share of dimensions in which it is the maximum.
            weights = (vectors == out[doc_index]).float().mean(1)
            return out, weights
        if self.how == "mean":
            counts = torch.bincount(doc_index, minlength=n_docs).clamp_min(1).to(vectors.dtype)
            weights = 1.0 / counts[doc_index]
        else:
            assert self.score is not None
            scores = self.score(vectors).squeeze(-1).float()
            peak = scores.new_full((n_docs,), float("-inf")).scatter_reduce(0, doc_index, scores, "amax")
            raw = torch.exp(scores - peak[doc_index])
            total = raw.new_zeros(n_docs).index_add(0, doc_index, raw)
            weights = (raw / total[doc_index]).to(vectors.dtype)
        out = vectors.new_zeros((n_docs, width)).index_add(0, doc_index, vectors * weights[:, None])
        return out, weights


class LongTextModel(nn.Module):
    """Encoder, window pooling and a linear head: what trains, predicts, serves and is saved."""

    def __init__(self, encoder: nn.Module, pooling: str, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        dim = encoder.config.hidden_size
        self.pooling = WindowPooling(dim, pooling)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(dim, num_labels)
        self.config = encoder.config

    @property
    def base_model(self) -> nn.Module:
        return self.encoder

    def get_input_embeddings(self) -> nn.Module:
        return self.encoder.get_input_embeddings()

    def window_vectors(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The mean of each window's token vectors; in slices of :data:`WINDOW_BATCH` when no
        gradient is kept, so a batch of long documents does not hold every window's activations."""
        step = len(input_ids) if torch.is_grad_enabled() else WINDOW_BATCH
        parts = []
        for i in range(0, len(input_ids), step):
            ids, mask = input_ids[i:i + step], attention_mask[i:i + step]
            hidden = self.encoder(input_ids=ids, attention_mask=mask)[0]
            weight = mask.unsqueeze(-1).to(hidden.dtype)
            parts.append((hidden * weight).sum(1) / weight.sum(1).clamp_min(1.0))
        return torch.cat(parts)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, doc_index: torch.Tensor | None = None,
                output_hidden_states: bool = False, **_: torch.Tensor) -> Any:
        # Without doc_index every row is a document of one window (what explanations feed in).
        if doc_index is None:
            doc_index = torch.arange(len(input_ids), device=input_ids.device)
        vectors = self.window_vectors(input_ids, attention_mask)
        docs, weights = self.pooling(vectors, doc_index, int(doc_index.max()) + 1)
        logits = self.classifier(self.dropout(docs))
        return SimpleNamespace(logits=logits, hidden_states=(docs,) if output_hidden_states else None,
                               window_weights=weights)

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        self.encoder.save_pretrained(folder, safe_serialization=True)
        head = {k: v.contiguous() for k, v in self.state_dict().items() if not k.startswith("encoder.")}
        save_file(head, str(folder / HEAD_FILE))
        shape = {"pooling": self.pooling.how, "num_labels": self.classifier.out_features}
        (folder / SHAPE_FILE).write_text(json.dumps(shape), encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path) -> LongTextModel:
        from transformers import AutoModel

        folder = Path(folder)
        shape = json.loads((folder / SHAPE_FILE).read_text(encoding="utf-8"))
        model = cls(AutoModel.from_pretrained(folder, use_safetensors=True), shape["pooling"], shape["num_labels"])
        missing, unexpected = model.load_state_dict(load_file(str(folder / HEAD_FILE)), strict=False)
        if unexpected or [k for k in missing if not k.startswith("encoder.")]:
            raise ValueError(f"{folder / HEAD_FILE} does not fit the model: missing {missing}, "
                             f"unexpected {unexpected}")
        return model
