"""Explanations of single predictions.

Long documents (``model.kind: long_text``): each window's share, the drop in P(predicted
class) when the document is read without it, then Integrated Gradients over the words of
the window that mattered most, read as a document of its own.

Text models: Integrated Gradients (Sundararajan et al. 2017, via captum) on the input
embeddings, from an all-padding baseline (special tokens kept) to the text, for the
predicted class; word pieces are merged back into words. Feature models (fusion, mlp,
gbm): occlusion, the change in P(predicted class) when one column is set to its training
value (mean, or "unseen category"), which is exact for what it measures and needs no
gradients, so it works for trees too.

Multi-label models explain their most probable label, through its own sigmoid: why this
label, independently of the others.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from fintune.data import Examples
from fintune.errors import FintuneError, needs
from fintune.models.inference import activate

IG_STEPS = 32
# Methods that hook the embedding layer (captum): a server runs them on a copy of its model.
ON_EMBEDDINGS = frozenset({"integrated_gradients", "windows"})


@dataclass
class Explanation:
    """Why one row got its prediction: parts (words or columns) with signed attributions."""

    text: str
    label: str
    probability: float
    parts: list[tuple[str, float]]  # in reading order; positive pushes toward ``label``
    # Long documents: per window, its first token, its weight in the pooling, and the drop in
    # P(label) without it; ``parts`` are then the words of the window with the largest drop.
    windows: list[dict[str, float]] = field(default_factory=list)
    # What ``parts`` are: words (Integrated Gradients, windows) or "column = value" (occlusion).
    method: str = "integrated_gradients"

    def top(self, k: int = 8) -> list[tuple[str, float]]:
        """The k parts with the largest absolute attribution."""
        return sorted(self.parts, key=lambda p: -abs(p[1]))[:k]

    def to_html(self) -> str:
        """The parts as highlighted spans: green toward the label, red against it."""
        head = f"<b>{html.escape(self.label)}</b> ({self.probability:.2f}): "
        if self.windows:
            top = max(self.windows, key=lambda w: w["drop"])
            head += (f"<i>{len(self.windows)} windows; window {int(top['window']) + 1} (from token "
                     f"{int(top['start'])}) moves it most ({top['drop']:+.3f}):</i> ")
        return head + highlighted(self.parts)


def highlighted(parts: list[tuple[str, float]]) -> str:
    """Parts as HTML spans shaded by attribution: green toward the label, red against it (the
    report's and the board's colours, one function for both)."""
    peak = max((abs(a) for _, a in parts), default=0.0) or 1.0
    spans = []
    for part, value in parts:
        alpha = min(abs(value) / peak, 1.0) * 0.8
        color = f"rgba(34,139,34,{alpha:.2f})" if value >= 0 else f"rgba(205,38,38,{alpha:.2f})"
        spans.append(f'<span title="{value:+.4f}" style="background:{color};padding:1px 2px;'
                     f'border-radius:3px">{html.escape(part)}</span>')
    return " ".join(spans)


def explain(model: Any, examples: Examples, index: int = 0, table: pd.DataFrame | None = None) -> Explanation:
    """Explain row ``index`` of ``examples`` with the method that fits the model.

    Feature models need ``table``, the raw rows aligned with ``examples``, so that an
    occluded value also leaves the text the fusion model reads.
    """
    method = model.explanation_method  # the model's class says how it is explained
    if method is None:
        raise FintuneError("explanations (Integrated Gradients, occlusion) are implemented for classification, "
                           "relation and multi-label tasks with encoder and feature models, not for causal LMs, "
                           "bags of words or other tasks")
    if method == "windows":
        return _windows(model, examples.texts[index])
    if method == "integrated_gradients":
        if model.data_config.pair_column is not None:
            raise FintuneError("explanations of text-pair models (data.pair_column) are not implemented: "
                               "Integrated Gradients here attributes one text")
        return _integrated_gradients(model, examples.texts[index])
    if table is None:
        raise ValueError("feature models are explained from the raw table rows")
    return _occlusion(model, table.iloc[[index]])


def _integrated_gradients(model: Any, text: str, target: int | None = None) -> Explanation:
    enc = model.tokenizer(text, truncation=True, max_length=model.max_length, return_tensors="pt")
    return _attribute(model, text, enc, target)


def _attribute(model: Any, text: str, enc: Any, target: int | None) -> Explanation:
    """Integrated Gradients over one tokenized text, for ``target`` (default: the prediction)."""
    with needs("trust", "explanations by integrated gradients"):
        from captum.attr import LayerIntegratedGradients

    net = model.model
    net.eval()
    device = next(net.parameters()).device
    ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
    special = torch.tensor(model.tokenizer.get_special_tokens_mask(ids[0].tolist(), already_has_special_tokens=True),
                           device=device).bool()
    baseline = torch.where(special, ids, torch.full_like(ids, model.tokenizer.pad_token_id or 0))
    extra = {"token_type_ids": enc["token_type_ids"].to(device)} if "token_type_ids" in enc else {}

    temperature = model.temperature or 1.0  # explain the calibrated probability the model reports

    def forward(input_ids: torch.Tensor) -> torch.Tensor:
        n = input_ids.shape[0]
        more = {k: v.expand(n, -1) for k, v in extra.items()}
        logits = net(input_ids=input_ids, attention_mask=mask.expand(n, -1), **more).logits
        return activate(logits / temperature, model.task)  # a softmax over classes, a sigmoid per label

    with torch.no_grad():
        probs = forward(ids)[0]
    if target is None:
        target = int(model.labels_ids(probs[None].cpu().numpy())[0])
    lig = LayerIntegratedGradients(forward, net.get_input_embeddings())
    # A sharp softmax bends the path integral; add steps until the attributions add up to
    # p(text) - p(baseline) within 5% (the completeness axiom), or the step budget ends.
    for steps in (IG_STEPS, 2 * IG_STEPS, 4 * IG_STEPS, 8 * IG_STEPS):
        attributions, delta = lig.attribute(ids, baselines=baseline, target=target, n_steps=steps,
                                            internal_batch_size=IG_STEPS, return_convergence_delta=True)
        if abs(float(delta)) <= 0.05 * max(abs(float(attributions.sum())), 1e-3):
            break
    scores = attributions.sum(-1)[0].detach().cpu().numpy()
    tokens = model.tokenizer.convert_ids_to_tokens(ids[0].tolist())
    words = _merge_pieces(tokens, scores, special.cpu().numpy())
    return Explanation(text, model.label_names[target], float(probs[target]), words)


def _windows(model: Any, text: str) -> Explanation:
    """Which window of a long document drove its score, and which words of that window."""
    from fintune.data.batching import collate
    from fintune.models.long_text import window_ids

    windowed = window_ids(model.tokenizer, [text], model.max_length, model.meta.long_text)
    windows, starts = windowed.windows[0], windowed.starts[0]
    net = model.model
    net.eval()
    device = next(net.parameters()).device
    temperature = model.temperature or 1.0

    @torch.no_grad()
    def read(kept: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        batch = {k: v.to(device) for k, v in collate({"windows": [kept]}, np.array([0]), model.inputs.pad_id).items()}
        out = net(**batch)
        return (activate(out.logits.float() / temperature, model.task)[0].cpu().numpy(),
                out.window_weights.float().cpu().numpy())

    probs, weights = read(windows)
    target = int(model.labels_ids(probs[None])[0])
    drops = [float(probs[target] - read(windows[:i] + windows[i + 1:])[0][target]) if len(windows) > 1 else 0.0
             for i in range(len(windows))]
    top = int(np.argmax(drops))
    ids = torch.tensor([windows[top]])
    words = _attribute(model, text, {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, target).parts
    summary = [{"window": i, "start": starts[i], "weight": float(weights[i]), "drop": drops[i]}
               for i in range(len(windows))]
    return Explanation(text, model.label_names[target], float(probs[target]), words, summary)


def _merge_pieces(tokens: list[str], scores: np.ndarray, special: np.ndarray) -> list[tuple[str, float]]:
    """WordPiece ``##`` continuations (and SentencePiece ``▁`` starts) joined into words, scores summed."""
    words: list[tuple[str, float]] = []
    for token, score, is_special in zip(tokens, scores, special):
        if is_special:
            continue
        if token.startswith("##") and words:
            word, total = words[-1]
            words[-1] = (word + token[2:], total + float(score))
        else:
            words.append((token.lstrip("▁Ġ"), float(score)))
    return words


def _occlusion(model: Any, row: pd.DataFrame) -> Explanation:
    examples = model.examples_of(row, "row")
    probs = model.outputs(examples)[0]
    target = int(model.labels_ids(probs[None])[0])
    enc = model.features
    # A text model over serialized rows has no feature encoder: its columns are the config's.
    columns = enc.columns if enc is not None else list(model.data_config.feature_columns or [])
    parts = []
    for col in columns:
        neutral = row.copy()
        # A number goes to its training mean, a category to missing (all-zero one-hot); the
        # serialized text is rebuilt from the changed row, so fusion (and a text model reading
        # the row as text) loses the value too.
        neutral[col] = enc.means[enc.numeric.index(col)] if enc is not None and col in enc.numeric else np.nan
        moved = model.outputs(model.examples_of(neutral, "row"))[0][target]
        parts.append((f"{col} = {_show(row[col].iloc[0])}", float(probs[target] - moved)))
    return Explanation(examples.texts[0], model.label_names[target], float(probs[target]), parts, method="occlusion")


def _show(value: Any) -> str:
    return "missing" if pd.isna(value) else str(value)
