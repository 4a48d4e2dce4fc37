"""The tagger: a Hugging Face token-classification encoder, optionally with a CRF on top.

Words are split into subwords; the first subword of each word carries the word's tag and
the rest are ignored in the loss (Devlin et al. 2019). Sentences longer than
``model.max_length`` subwords are cut into consecutive chunks of whole words, each a row
of its own; predictions are put back together per sentence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import AutoConfig, AutoModelForTokenClassification, PreTrainedTokenizerBase
from transformers.modeling_outputs import TokenClassifierOutput

from fintune.config import ModelConfig
from fintune.data import Examples
from fintune.models.inference import autocast
from fintune.models.metadata import TaggerMeta
from fintune.tagging.crf import CRF
from fintune.tagging.feature_crf import FeatureCRF, TagEnsemble
from fintune.tagging.schemes import SHAPES, Scheme, allowed_ends, allowed_starts, allowed_transitions, word_shape
from fintune.data.batching import collate, eval_batches

HEAD_FILE = "tagger_head.safetensors"  # what the tagger adds to the encoder: CRF, case embedding, LSTM
IGNORE = -100


class BiLSTM(nn.Module):
    """A bidirectional LSTM over the encoder's last hidden layer, then a linear layer to tag
    scores: the BERT-BiLSTM(-CRF) recipe, which adds sequence modelling on top of attention."""

    def __init__(self, dim: int, hidden: int, num_tags: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dim, hidden, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(2 * hidden, num_tags)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        lengths = attention_mask.sum(1).clamp_min(1).cpu()
        # Packed, so the backward direction starts at each row's last token, not at its padding.
        packed = nn.utils.rnn.pack_padded_sequence(hidden, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=hidden.shape[1])
        return self.out(self.dropout(out))


class TokenTagger(nn.Module):
    """Subword tag scores from the encoder; a CRF over the word-level scores when ``crf`` is set.

    With ``case`` (an embedding of each word's shape, see :func:`word_shape`) the shape is
    added to the token embeddings at the input, so an uncased encoder sees capitals again.
    It starts at zero: before training the tagger is exactly the pretrained encoder. With
    ``lstm`` the tag scores come from a BiLSTM over the encoder's last layer instead of the
    encoder's own linear head. With ``ensemble`` (``model.feature_crf``) predictions mix the
    encoder's tag distribution with a feature CRF's (:mod:`fintune.tagging.feature_crf`).

    The encoder is a plain ``...ForTokenClassification`` model, saved in the Hugging Face
    format, so the folder also loads in a transformers token-classification pipeline (which
    then decodes without the CRF and the case embedding; a tagger with an LSTM needs fintune).
    """

    peft_attribute = "encoder"  # adapters go on the encoder; the CRF trains in full beside them

    def __init__(self, encoder: nn.Module, crf: CRF | None = None, case: nn.Embedding | None = None,
                 lstm: BiLSTM | None = None, ensemble: TagEnsemble | None = None) -> None:
        super().__init__()
        self.encoder, self.crf, self.case, self.lstm = encoder, crf, case, lstm
        # Not a module: the feature CRF (model.feature_crf) trains after the encoder, outside torch.
        self.ensemble = ensemble

    @property
    def base_model(self) -> nn.Module:
        """The encoder body, so strategies tell it from the head (classifier, LSTM and CRF)."""
        return self.encoder.base_model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None, shape_ids: torch.Tensor | None = None,
                **kwargs: Any) -> Any:
        extra: dict[str, Any] = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        if self.case is None:
            extra["input_ids"] = input_ids
        elif shape_ids is None:
            raise ValueError("this tagger reads word shapes (model.case_features): pass shape_ids")
        else:
            extra["inputs_embeds"] = self.encoder.get_input_embeddings()(input_ids) + self.case(shape_ids)
        if self.lstm is None:
            return self.encoder(attention_mask=attention_mask, **extra, **kwargs)
        out = self.encoder(attention_mask=attention_mask, output_hidden_states=True, **extra, **kwargs)
        return TokenClassifierOutput(logits=self.lstm(out.hidden_states[-1], attention_mask))

    def head_state(self) -> dict[str, torch.Tensor]:
        """The CRF, case embedding and LSTM weights: what the encoder's own files do not hold."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("encoder.")}

    def save(self, folder: Path) -> None:
        """The encoder (or adapter) in Hugging Face format, and the CRF, case embedding and LSTM beside it."""
        self.encoder.save_pretrained(folder, safe_serialization=True)
        head = self.head_state()
        if head:
            from safetensors.torch import save_file

            save_file({k: v.contiguous() for k, v in head.items()}, str(folder / HEAD_FILE))
        if self.ensemble is not None:
            self.ensemble.crf.save(folder)


def build_tagger(cfg: ModelConfig, path: str, tags: list[str], scheme: Scheme, config: Any) -> TokenTagger:
    """A fresh token-classification head on the backbone at ``path`` (``config``: the
    backbone's config with the tag set applied), with a CRF when ``cfg.crf``."""
    encoder = AutoModelForTokenClassification.from_pretrained(path, config=config, use_safetensors=True,
                                                              trust_remote_code=cfg.trust_remote_code)
    dim = encoder.get_input_embeddings().embedding_dim
    case = new_case_embedding(dim) if cfg.case_features else None
    lstm = BiLSTM(encoder.config.hidden_size, cfg.lstm_hidden, len(tags)) if cfg.lstm_hidden else None
    return TokenTagger(encoder, new_crf(tags, scheme) if cfg.crf else None, case, lstm)


def new_case_embedding(dim: int) -> nn.Embedding:
    """One vector per word shape, zero at first so training starts from the pretrained encoder."""
    case = nn.Embedding(len(SHAPES), dim, padding_idx=0)
    nn.init.zeros_(case.weight)
    return case


def tag_config_kwargs(tags: list[str]) -> dict[str, Any]:
    """``from_pretrained`` config arguments that name the tags (id2label)."""
    return {"num_labels": len(tags), "id2label": dict(enumerate(tags)),
            "label2id": {t: i for i, t in enumerate(tags)}}


def new_crf(tags: list[str], scheme: Scheme) -> CRF:
    """A CRF over ``tags`` that forbids the transitions ``scheme`` does not allow."""
    return CRF(len(tags), allowed_transitions(tags, scheme), allowed_starts(tags, scheme), allowed_ends(tags, scheme))


def load_tagger(folder: Path, tags: list[str], head: TaggerMeta, base_path: str | None) -> TokenTagger:
    """A saved tagger: the encoder (or ``base_path`` plus the adapter in ``folder``) and its CRF."""
    if base_path is not None:
        from peft import PeftModel

        base = AutoModelForTokenClassification.from_pretrained(base_path, config=AutoConfig.from_pretrained(folder),
                                                               use_safetensors=True)
        encoder: nn.Module = PeftModel.from_pretrained(base, folder)
    else:
        encoder = AutoModelForTokenClassification.from_pretrained(folder, use_safetensors=True)
    crf = new_crf(tags, head.scheme) if head.crf else None  # type: ignore[arg-type]
    case = new_case_embedding(encoder.get_input_embeddings().embedding_dim) if head.case_features else None
    hidden = head.lstm_hidden
    lstm = BiLSTM(encoder.config.hidden_size, hidden, len(tags)) if hidden else None
    ensemble = None
    if head.feature_weight is not None:
        ensemble = TagEnsemble(FeatureCRF.load(folder, tags), head.feature_weight, new_crf(tags, head.scheme))  # type: ignore[arg-type]
    tagger = TokenTagger(encoder, crf, case, lstm, ensemble)
    if tagger.head_state():
        from safetensors.torch import load_file

        tagger.load_state_dict(load_file(str(folder / HEAD_FILE)), strict=False)
    return tagger


# ---------------------------------------------------------------- words to subword rows


@dataclass
class TagInputs:
    """Turns sentences into subword rows: ``input_ids``, ``word_starts`` (the position of each
    word's first subword), ``tag_ids`` (with tags) and ``origin`` (sentence, first word)."""

    tokenizer: PreTrainedTokenizerBase
    max_length: int
    tag_ids: dict[str, int]
    case_features: bool = False  # also ``shape_ids``: each subword's word shape

    def __call__(self, examples: Examples) -> dict[str, Any]:
        assert examples.tokens is not None
        pieces = self.tokenizer(examples.tokens, is_split_into_words=True, add_special_tokens=False)
        head, tail = _special_tokens(self.tokenizer)
        budget = max(1, self.max_length - len(head) - len(tail))
        out: dict[str, list[Any]] = {"input_ids": [], "word_starts": [], "origin": [], "tag_ids": [], "shape_ids": []}
        for s, words in enumerate(examples.tokens):
            per_word = _subwords_per_word(pieces.word_ids(s), pieces["input_ids"][s], len(words),
                                          self.tokenizer.unk_token_id)
            for first, last in chunk_words([len(p) for p in per_word], budget):
                ids, starts, shapes = list(head), [], [0] * len(head)
                for w in range(first, last):
                    starts.append(len(ids))
                    pieces_w = per_word[w][:budget]  # a single word longer than the budget is cut
                    ids.extend(pieces_w)
                    if self.case_features:
                        shapes.extend([word_shape(words[w])] * len(pieces_w))
                out["input_ids"].append(ids + list(tail))
                if self.case_features:
                    out["shape_ids"].append(shapes + [0] * len(tail))
                out["word_starts"].append(starts)
                out["origin"].append((s, first))
                if examples.labels is not None:
                    out["tag_ids"].append([self.tag_ids[t] for t in examples.labels[s][first:last]])
        if "token_type_ids" in self.tokenizer.model_input_names:
            out["token_type_ids"] = [[0] * len(ids) for ids in out["input_ids"]]
        if examples.labels is None:
            del out["tag_ids"]
        if not self.case_features:
            del out["shape_ids"]
        return out

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id or 0


def _special_tokens(tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
    """The special tokens around one sequence: [CLS] ... [SEP] for BERT, <s> ... </s> for RoBERTa."""
    probe = tokenizer([["a"]], is_split_into_words=True, add_special_tokens=True)
    ids, word_ids = probe["input_ids"][0], probe.word_ids(0)
    inside = [i for i, w in enumerate(word_ids) if w is not None]
    return ids[:inside[0]], ids[inside[-1] + 1:]


def _subwords_per_word(word_ids: list[int | None], ids: list[int], n_words: int, unk: int | None) -> list[list[int]]:
    per_word: list[list[int]] = [[] for _ in range(n_words)]
    for word, token in zip(word_ids, ids):
        if word is not None:
            per_word[word].append(token)
    # A word the tokenizer drops entirely still needs a position to carry its tag.
    return [p or [unk if unk is not None else 0] for p in per_word]


def chunk_words(lengths: Sequence[int], budget: int) -> list[tuple[int, int]]:
    """Consecutive word ranges whose subword counts fit ``budget`` (a longer word alone)."""
    chunks, start, used = [], 0, 0
    for i, n in enumerate(lengths):
        if used + n > budget and i > start:
            chunks.append((start, i))
            start, used = i, 0
        used += n
    chunks.append((start, len(lengths)))
    return chunks


def word_emissions(logits: torch.Tensor, starts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """The scores at each word's first subword, (B, W, K), and the word mask (B, W)."""
    width = max(len(s) for s in starts)
    index = torch.zeros((len(starts), width), dtype=torch.long)
    mask = torch.zeros((len(starts), width), dtype=torch.bool)
    for row, positions in enumerate(starts):
        index[row, :len(positions)] = torch.tensor(positions, dtype=torch.long)
        mask[row, :len(positions)] = True
    index, mask = index.to(logits.device), mask.to(logits.device)
    gathered = logits.gather(1, index[:, :, None].expand(-1, -1, logits.shape[-1]))
    return gathered, mask


class TagLoss:
    """The training objective: cross-entropy on first subwords, or the CRF's negative
    log-likelihood per word (so both are on one scale for the same learning rate)."""

    def __init__(self, encoded: dict[str, Any], crf: CRF | None) -> None:
        self.starts, self.tags, self.crf = encoded["word_starts"], encoded["tag_ids"], crf

    def __call__(self, logits: torch.Tensor, index: np.ndarray) -> torch.Tensor:
        emissions, mask = word_emissions(logits.float(), [self.starts[i] for i in index])
        tags = torch.full(mask.shape, IGNORE, dtype=torch.long, device=logits.device)
        for row, i in enumerate(index):
            tags[row, :len(self.tags[i])] = torch.tensor(self.tags[i], dtype=torch.long)
        if self.crf is not None:
            return self.crf.neg_log_likelihood(emissions, tags, mask) / mask.sum()
        return nn.functional.cross_entropy(emissions.reshape(-1, emissions.shape[-1]), tags.reshape(-1),
                                           ignore_index=IGNORE)


def _word_scores(model: TokenTagger, encoded: dict[str, Any], n_words: list[int], batch_size: int, pad_id: int,
                 dtype: torch.dtype | None, on_batch: Callable[[int], None] | None,
                 use: Callable[[torch.Tensor, torch.Tensor, list[int]], None]) -> None:
    """Run the rows (chunks) in length-sorted batches; ``use`` gets each batch's word scores,
    word mask and row indices. ``on_batch`` hears how many sentences each batch finished."""
    model.eval()
    device = next(model.parameters()).device
    lengths = [len(ids) for ids in encoded["input_ids"]]
    chunks_left = np.bincount([s for s, _ in encoded["origin"]], minlength=len(n_words))
    for index in eval_batches(lengths, batch_size):
        batch = {k: v.to(device) for k, v in collate(encoded, index, pad_id).items()}
        with autocast(device, dtype):
            logits = model(**batch).logits
        emissions, mask = word_emissions(logits.float(), [encoded["word_starts"][i] for i in index])
        use(emissions, mask, list(index))
        finished = 0
        for i in index:
            sentence = encoded["origin"][i][0]
            chunks_left[sentence] -= 1
            finished += int(chunks_left[sentence] == 0)
        if on_batch:
            on_batch(finished)


@torch.inference_mode()
def predict_tags(model: TokenTagger, encoded: dict[str, Any], n_words: list[int],
                 batch_size: int, pad_id: int, dtype: torch.dtype | None = None,
                 on_batch: Callable[[int], None] | None = None) -> tuple[list[list[int]], list[list[float]]]:
    """Tag ids per word of each sentence, and the probability of each chosen tag (the encoder's
    Viterbi path or argmax; with a feature CRF, see :func:`predict_ensemble`)."""
    tags = [[0] * n for n in n_words]
    probs = [[1.0] * n for n in n_words]

    def use(emissions: torch.Tensor, mask: torch.Tensor, index: list[int]) -> None:
        soft = emissions.softmax(-1)
        paths = (model.crf.decode(emissions, mask) if model.crf is not None
                 else [row[:int(m.sum())] for row, m in zip(soft.argmax(-1).tolist(), mask)])
        for row, i in enumerate(index):
            sentence, first = encoded["origin"][i]
            for w, tag in enumerate(paths[row]):
                tags[sentence][first + w] = tag
                probs[sentence][first + w] = float(soft[row, w, tag])

    _word_scores(model, encoded, n_words, batch_size, pad_id, dtype, on_batch, use)
    return tags, probs


@torch.inference_mode()
def tag_marginals(model: TokenTagger, encoded: dict[str, Any], n_words: list[int], batch_size: int, pad_id: int,
                  dtype: torch.dtype | None = None, on_batch: Callable[[int], None] | None = None) -> list[np.ndarray]:
    """The encoder's distribution over tags for every word, (words, tags) per sentence: the CRF
    layer's marginals when there is one (chunk by chunk), else the softmax of the scores."""
    out = [np.zeros((n, 0), dtype=np.float32) for n in n_words]
    parts: dict[int, list[tuple[int, np.ndarray]]] = {}

    def use(emissions: torch.Tensor, mask: torch.Tensor, index: list[int]) -> None:
        probs = model.crf.marginals(emissions, mask) if model.crf is not None else emissions.softmax(-1)
        for row, i in enumerate(index):
            sentence, first = encoded["origin"][i]
            parts.setdefault(sentence, []).append((first, probs[row, :int(mask[row].sum())].cpu().numpy()))

    _word_scores(model, encoded, n_words, batch_size, pad_id, dtype, on_batch, use)
    for sentence, chunks in parts.items():
        out[sentence] = np.concatenate([p for _, p in sorted(chunks, key=lambda c: c[0])])
    return out
