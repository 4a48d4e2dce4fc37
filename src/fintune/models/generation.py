"""Instruction tuning of causal LMs: prompts with answers for training, generation for predict.

Records are FinGPT's instruction/input/output triples. Training sees
``prompt + " " + output + </s>`` and learns the answer tokens only (the prompt's tokens carry
no loss), so the model learns to answer, not to repeat instructions. Prediction feeds the
prompt alone, left-padded, and decodes greedily until end-of-sequence or
``model.max_new_tokens``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from fintune.data import Examples
from fintune.errors import DataError
from fintune.models.chat import PLAIN_TEMPLATE, ChatFormat, encode_conversation, stop_ids
from fintune.models.inference import autocast
from fintune.data.batching import collate, eval_batches, lengths_of

DEFAULT_PROMPT = "Instruction: {instruction}\nInput: {text}\nAnswer:"
NO_INSTRUCTION_PROMPT = "Input: {text}\nAnswer:"
# The user's turn when the tokenizer's chat template wraps it (the template adds the rest).
CHAT_PROMPT = "{instruction}\n\n{text}"
CHAT_NO_INSTRUCTION_PROMPT = "{text}"


def default_prompt(has_instructions: bool, chat: bool = False) -> str:
    """FinGPT's template with a per-record instruction, or the input alone without one; in a
    chat template, the user's turn holds the instruction and the input."""
    if chat:
        return CHAT_PROMPT if has_instructions else CHAT_NO_INSTRUCTION_PROMPT
    return DEFAULT_PROMPT if has_instructions else NO_INSTRUCTION_PROMPT


@dataclass
class GenerationFormat:
    """Turns records into token ids: the prompt, and with ``answers`` the reference answer too."""

    tokenizer: PreTrainedTokenizerBase
    template: str
    answers: bool = False  # teacher forcing: append the answer and end-of-sequence
    chat: ChatFormat | None = None  # the user's turn in the chat template; None: the raw prompt
    _prefixes: dict[str, list[int]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if "{text}" not in self.template:
            raise ValueError("model.prompt must contain {text}")
        self.prefix, suffix = self.template.split("{text}", 1)
        if "{instruction}" in suffix:
            raise ValueError("model.prompt: put {instruction} before {text}")
        self.eos_id = self.tokenizer.eos_token_id
        if self.chat is not None:
            # What follows the input (the rest of the user's turn, the assistant's header) does not
            # depend on the instruction, which comes before it.
            after = self.chat.around_input(self.template.replace("{instruction}", ""))[1]
            self.suffix_ids = self.tokenizer(after, add_special_tokens=False)["input_ids"]
            close = self.chat.turn_end()
            self.close_ids = self.tokenizer(close.rstrip("\n") or close, add_special_tokens=False)["input_ids"]
        else:
            self.suffix_ids = self.tokenizer(suffix, add_special_tokens=False)["input_ids"]
            self.close_ids = [self.eos_id]
        self.stop_ids = stop_ids(self.tokenizer, self.chat)

    def with_answers(self) -> GenerationFormat:
        """The same format for training and validation loss: prompt, answer, end-of-sequence."""
        return replace(self, answers=True, _prefixes=self._prefixes)

    def _prefix_ids(self, instruction: str) -> list[int]:
        # Instructions repeat across records (one per task in FinGPT's data): tokenize each once.
        if instruction not in self._prefixes:
            if self.chat is not None:
                user = self.template.replace("{instruction}", instruction)
                before = self.chat.around_input(user if instruction else user.lstrip())[0]
                self._prefixes[instruction] = self.tokenizer(before, add_special_tokens=False)["input_ids"]
            else:
                text = self.prefix.replace("{instruction}", instruction)
                self._prefixes[instruction] = self.tokenizer(text, add_special_tokens=True)["input_ids"]
        return self._prefixes[instruction]

    def encode(self, examples: Examples, max_length: int) -> dict[str, list[Any]]:
        """``input_ids`` per record and, with answers, ``answer_start``: where the answer begins.

        A long input is cut so the instruction, "Answer:" and the answer survive; an answer
        longer than the room left is cut too.
        """
        if examples.messages is not None:
            return self._encode_conversations(examples, max_length)
        n = len(examples)
        if "{instruction}" in self.prefix and examples.instructions is None and self.answers:
            raise DataError("the prompt has {instruction} and the data has no instructions; set "
                            "data.instruction_column, or write the instruction into model.prompt",
                            file=examples.source)
        # Plain texts to answer (predict, chat) carry their question in the text: no instruction.
        instructions = examples.instructions or [""] * n
        if self.answers and examples.labels is None:
            raise DataError("training needs the reference answers (data.label_column)", file=examples.source)
        bodies = self.tokenizer(list(examples.texts), add_special_tokens=False)["input_ids"]
        # After "Answer:" the answer is a new word; in a chat it opens the assistant's turn.
        space = "" if self.chat is not None else " "
        answers = (self.tokenizer([space + str(a) for a in examples.labels], add_special_tokens=False)["input_ids"]
                   if self.answers else [[] for _ in range(n)])
        out: dict[str, list[Any]] = {"input_ids": [], "answer_start": [], "cut": []}
        for instruction, body, answer in zip(instructions, bodies, answers):
            prefix = self._prefix_ids(instruction)
            room = max_length - len(prefix) - len(self.suffix_ids)
            if room < 2:
                raise DataError(f"model.max_length {max_length} leaves no room for the input and answer in the "
                                f"prompt ({len(prefix) + len(self.suffix_ids)} tokens); raise it",
                                file=examples.source)
            if self.answers:
                answer = (answer + self.close_ids)[:room - 1]
            prompt = prefix + body[:room - len(answer)] + self.suffix_ids
            out["cut"].append(len(body) > room - len(answer))
            out["input_ids"].append(prompt + answer)
            out["answer_start"].append(len(prompt))
        return out



    def _encode_conversations(self, examples: Examples, max_length: int) -> dict[str, list[Any]]:
        """Whole conversations (data.messages_column) in the chat template. With answers, each
        record's reference closes it and ``loss_mask`` marks every assistant answer; a conversation
        longer than ``max_length`` loses its oldest tokens (the end, where the answer is, stays)."""
        chat = self.chat or ChatFormat(self.tokenizer, PLAIN_TEMPLATE)
        out: dict[str, list[Any]] = {"input_ids": [], "answer_start": []}
        if self.answers:
            if examples.labels is None:
                raise DataError("training needs each conversation's last answer", file=examples.source)
            out["loss_mask"] = []
            for context, answer in zip(examples.messages or [], examples.labels):
                ids, mask = encode_conversation(chat, [*context, {"role": "assistant", "content": str(answer)}])
                ids, mask = ids[-max_length:], mask[-max_length:]
                last = len(mask) - next((i for i, m in enumerate(reversed(mask)) if not m), len(mask))
                out["input_ids"].append(ids)
                out["loss_mask"].append(mask)
                out["answer_start"].append(max(last, 1))
            return out
        out["cut"] = []
        for context in examples.messages or []:
            ids = self.tokenizer(chat.render(context, True), add_special_tokens=False)["input_ids"]
            out["cut"].append(len(ids) > max_length)
            out["input_ids"].append(ids[-max_length:])
            out["answer_start"].append(len(ids[-max_length:]))
        return out


class AnswerLoss:
    """Cross-entropy on the answer tokens only, a mean per record and then over records.

    Each record counts once whatever its answer's length, so a batch split across
    processes or micro-batches gives the gradient of the whole batch.
    """

    def __init__(self, encoded: dict[str, list[Any]]) -> None:
        self.ids, self.starts = encoded["input_ids"], encoded["answer_start"]
        self.masks = encoded.get("loss_mask")  # conversations: every assistant answer, not one span

    def learned(self, i: int) -> list[int]:
        """The positions of record ``i``'s tokens that are learned (its answers); never 0, so
        each is predicted from the token before it, inside the record."""
        ids = self.ids[i]
        if self.masks is not None:
            return [t for t in range(1, len(ids)) if self.masks[i][t]]
        return list(range(self.starts[i], len(ids)))

    def token_losses(self, logits: torch.Tensor, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Negative log-likelihood of every answer token of a right-padded batch (the order of
        ``index``), 0 elsewhere, and how many answer tokens each record has."""
        targets = torch.full(logits.shape[:2], -100, dtype=torch.long, device=logits.device)
        for j, i in enumerate(index):
            learned = self.learned(i)
            # Token t is predicted at position t - 1.
            targets[j, [t - 1 for t in learned]] = torch.tensor([self.ids[i][t] for t in learned],
                                                                dtype=torch.long, device=logits.device)
        token_loss = nn.functional.cross_entropy(logits.float().transpose(1, 2), targets, ignore_index=-100,
                                                 reduction="none")
        return token_loss, (targets != -100).sum(1)

    def per_record(self, logits: torch.Tensor, index: np.ndarray) -> torch.Tensor:
        """The loss of each record of a right-padded batch (the order of ``index``)."""
        token_loss, counts = self.token_losses(logits, index)
        return token_loss.sum(1) / counts.clamp_min(1)

    def answer_logps(self, logits: torch.Tensor, index: np.ndarray) -> torch.Tensor:
        """log P(answer | prompt) of each record: the sum over its answer tokens (preference tuning)."""
        return -self.token_losses(logits, index)[0].sum(1)

    def __call__(self, logits: torch.Tensor, index: np.ndarray) -> torch.Tensor:
        return self.per_record(logits, index).mean()


@torch.inference_mode()
def answer_loss(model: nn.Module, encoded: dict[str, list[Any]], batch_size: int, pad_id: int,
                dtype: torch.dtype | None = None) -> float:
    """Mean per-record loss on the answers of teacher-forced records (the validation metric)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    loss = AnswerLoss(encoded)
    total = 0.0
    for index in eval_batches(lengths_of(encoded), batch_size):
        batch = {k: v.to(device) for k, v in collate(encoded, index, pad_id).items()}
        with autocast(device, dtype):
            logits = model(**batch).logits
        total += float(loss.per_record(logits, index).sum())
    model.train(was_training)
    return total / max(len(encoded["input_ids"]), 1)


@torch.inference_mode()
def generate(model: nn.Module, tokenizer: PreTrainedTokenizerBase, encoded: dict[str, list[Any]], batch_size: int,
             max_new_tokens: int, dtype: torch.dtype | None = None,
             on_batch: Callable[[int], None] | None = None, stop: list[int] | None = None) -> list[str]:
    """Greedy answers to prompts, in input order; batches are length-sorted and left-padded."""
    model.eval()
    device = next(model.parameters()).device
    prompts = encoded["input_ids"]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    answers = [""] * len(prompts)
    for index in eval_batches(lengths_of(encoded), batch_size):
        rows = [prompts[i] for i in index]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for j, row in enumerate(rows):  # left padding: every prompt ends where generation starts
            ids[j, width - len(row):] = torch.tensor(row)
            mask[j, width - len(row):] = 1
        with autocast(device, dtype):
            out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), do_sample=False,
                                 num_beams=1, max_new_tokens=max_new_tokens, pad_token_id=pad_id,
                                 eos_token_id=stop or tokenizer.eos_token_id)
        for i, text in zip(index, tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)):
            answers[i] = text.strip()
        if on_batch:
            on_batch(len(index))
    return answers


@dataclass(frozen=True)
class Sampling:
    """How an answer is decoded: greedy at temperature 0, else sampled (top-p, seeded)."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None

    def generate_kwargs(self) -> dict[str, Any]:
        if self.temperature <= 0:
            return {"do_sample": False, "num_beams": 1}
        return {"do_sample": True, "temperature": self.temperature, "top_p": self.top_p}


def stream_answer(model: nn.Module, tokenizer: PreTrainedTokenizerBase, prompt_ids: list[int], sampling: Sampling,
                  stop: list[int], dtype: torch.dtype | None = None) -> Iterator[str]:
    """The answer to one prompt, piece by piece as it is generated (transformers'
    ``TextIteratorStreamer``, generation on a thread of its own); the pieces join to the answer."""
    from transformers import TextIteratorStreamer

    model.eval()
    device = next(model.parameters()).device
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
    ids = torch.tensor([prompt_ids], device=device)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    failure: list[BaseException] = []

    def run() -> None:
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        try:
            with torch.inference_mode(), autocast(device, dtype):
                model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=sampling.max_new_tokens,
                               pad_token_id=pad_id, eos_token_id=stop, streamer=streamer, **sampling.generate_kwargs())
        except BaseException as exc:  # handed to the reader, which raises it
            failure.append(exc)
            streamer.end()

    worker = threading.Thread(target=run, name="fintune-generate", daemon=True)
    worker.start()
    for piece in streamer:
        if piece:
            yield piece
    worker.join()
    if failure:
        raise failure[0]
