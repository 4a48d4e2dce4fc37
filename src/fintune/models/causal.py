"""Causal language models as classifiers, by instruction.

The text goes into a prompt ("... Answer with one of: negative, neutral, positive.\\nInput:
{text}\\nAnswer:") and each label word is scored as the answer: the model's log-probability
of the label's tokens after the prompt. Those k scores are the classifier's logits, so
evaluation gets class probabilities and the encoders' metrics, and an answer is never free
text that fails to parse. Training maximizes the log-probability of the true label's tokens
under the full vocabulary: the language-model loss on the answer tokens only.

Sequences are scored left-padded, so every prompt ends at the same position and only the
last few positions need logits (``logits_to_keep``): a 50,000-word vocabulary costs a few
positions, not the whole sequence. Single-token label words need one forward pass per row;
longer ones one per row and label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedTokenizerBase
from transformers.modeling_outputs import SequenceClassifierOutput

from fintune.data import Examples
from fintune.models.chat import ChatFormat

DEFAULT_PROMPT = "Instruction: Classify the text. Answer with one of: {choices}.\nInput: {text}\nAnswer:"
# The user's turn when the tokenizer's chat template wraps it (the template adds the rest).
DEFAULT_CHAT_PROMPT = "Classify the text. Answer with one word, one of: {choices}.\n\nText: {text}"


@dataclass
class PromptFormat:
    """The template and the label words; turns texts into prompt token ids."""

    tokenizer: PreTrainedTokenizerBase
    template: str
    label_words: list[str]
    chat: ChatFormat | None = None  # the user's turn in the chat template; None: the raw prompt

    def __post_init__(self) -> None:
        if "{text}" not in self.template:
            raise ValueError("model.prompt must contain {text}")
        choices = ", ".join(self.label_words)
        filled = self.template.replace("{choices}", choices)
        if self.chat is not None:
            # The rendered template carries its own special tokens; the answer opens the assistant turn.
            prefix, suffix = self.chat.around_input(filled)
            self.prefix_ids = self.tokenizer(prefix, add_special_tokens=False)["input_ids"]
            self.suffix_ids = self.tokenizer(suffix, add_special_tokens=False)["input_ids"]
            self.label_ids = [self.tokenizer(w, add_special_tokens=False)["input_ids"] for w in self.label_words]
        else:
            prefix, suffix = filled.split("{text}", 1)
            self.prefix_ids = self.tokenizer(prefix, add_special_tokens=True)["input_ids"]
            self.suffix_ids = self.tokenizer(suffix, add_special_tokens=False)["input_ids"]
            # The answer follows "Answer:" after a space, as a word of the vocabulary's spelling.
            self.label_ids = [self.tokenizer(" " + w, add_special_tokens=False)["input_ids"] for w in self.label_words]
        if any(not ids for ids in self.label_ids):
            raise ValueError("every label word must have at least one token")

    def encode(self, examples: Examples, max_length: int) -> dict[str, list[list[int]]]:
        """Prompt ids per text; a long text is cut so the instruction and "Answer:" survive."""
        texts = examples.texts
        budget = max_length - len(self.prefix_ids) - len(self.suffix_ids)
        if budget < 1:
            raise ValueError(f"model.max_length {max_length} leaves no room for the text in the prompt "
                             f"({len(self.prefix_ids) + len(self.suffix_ids)} tokens); raise it")
        body = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        return {"input_ids": [self.prefix_ids + ids[:budget] + self.suffix_ids for ids in body],
                "cut": [len(ids) > budget for ids in body]}


class CausalClassifier(nn.Module):
    """A causal LM whose logits are the log-probabilities of k label words as the answer."""

    peft_attribute = "lm"  # adapters go on the LM; the label-word scoring stays outside

    def __init__(self, lm: nn.Module, label_ids: list[list[int]], pad_id: int) -> None:
        super().__init__()
        self.lm, self.label_ids, self.pad_id = lm, label_ids, pad_id
        self.config = lm.config

    def get_input_embeddings(self) -> nn.Module:
        return self.lm.get_input_embeddings()

    @property
    def base_model(self) -> nn.Module:
        """The transformer body, where strategies find the layers."""
        return self.lm.base_model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_: Any) -> SequenceClassifierOutput:
        lengths = attention_mask.sum(1).tolist()
        longest_label = max(len(ids) for ids in self.label_ids)
        single = longest_label == 1
        answers = [[]] if single else self.label_ids
        rows = [input_ids[i, :n].tolist() + answer for i, n in enumerate(lengths) for answer in answers]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long, device=input_ids.device)
        mask = torch.zeros_like(ids)
        for r, row in enumerate(rows):  # left padding: every sequence ends at the same position
            ids[r, width - len(row):] = torch.tensor(row, device=ids.device)
            mask[r, width - len(row):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        keep = 1 if single else longest_label + 1
        logits = self.lm(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep).logits
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        if single:  # the next token after the prompt, read at each label's token
            scores = logprobs[:, -1, [ids_[0] for ids_ in self.label_ids]]
        else:
            k = len(self.label_ids)
            logprobs = logprobs.view(len(lengths), k, keep, -1)
            scores = torch.stack([
                sum(logprobs[:, j, keep - 1 - len(label) + t, token] for t, token in enumerate(label))
                for j, label in enumerate(self.label_ids)], dim=1)
        return SequenceClassifierOutput(logits=scores)


class AnswerLoss:
    """Negative log-likelihood of the true label's tokens: the LM loss on the answer only."""

    def __init__(self, labels: np.ndarray) -> None:
        self.labels = torch.tensor(labels)

    def __call__(self, logits: torch.Tensor, index: np.ndarray) -> torch.Tensor:
        labels = self.labels[index].to(logits.device)
        return -logits.float().gather(1, labels[:, None]).mean()


def label_words(label_names: list[str], words: dict[str, str] | None) -> list[str]:
    """The answer word of each label: ``model.label_words`` or the label name in lower case."""
    words = words or {}
    return [words.get(name, name.lower()) for name in label_names]
