"""Instruction-tuned causal LMs (task generation): answers in text, greedy decoding.

No class probabilities, so nothing that needs them applies (/v1/predict, ONNX, calibration,
fairness, explanations); `fintune predict` and `fintune evaluate` answer in batch, `fintune chat`
and the server's /v1/chat/completions answer conversations, and the report reviews the answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from fintune.data import Examples
from fintune.data.columns import conversations_of
from fintune.errors import FintuneError
from fintune.models.chat import PLAIN_TEMPLATE, ChatFormat
from fintune.models.generation import GenerationFormat, Sampling, generate, stream_answer
from fintune.config import ModelConfig
from fintune.models.backbones import generation_format
from fintune.models.backbones import load_lm as new_lm
from fintune.models.kinds.causal import CAUSAL_ONNX, chat_meta, load_lm, saved_chat
from fintune.models.metadata import PromptMeta, RunMeta
from fintune.models.predictor import OnBatch, Predictor, register_predictor
from fintune.models.reading import aligned

NO_SCORES = ("a generation run answers in text and has no class probabilities or values to "
             "score; use `fintune predict` (FintuneModel.generate) and `fintune evaluate`")


@register_predictor("generation")
class GenerationPredictor(Predictor):
    """``task: generation``: the LM answers each record's prompt."""
    card_origin = "the causal LM `{backbone}` instruction-tuned with strategy `{strategy}` to generate answers"

    servable = ("/v1/predict answers with class probabilities or values; a generation run answers at "
                "/v1/chat/completions (OpenAI's chat API), or in batch with `fintune predict`")
    onnx_export = CAUSAL_ONNX
    has_scores = False
    chats = None

    @classmethod
    def build(cls, cfg: ModelConfig, task: str, label_names: list[str] | None, n_features: int, prompt: Any,
              load_kwargs: dict[str, Any]) -> torch.nn.Module:
        return new_lm(cfg, load_kwargs)

    @classmethod
    def new_prompt(cls, cfg: ModelConfig, tokenizer: Any, label_names: list[str] | None,
                   has_instructions: bool) -> GenerationFormat:
        return generation_format(cfg, tokenizer, has_instructions)

    @classmethod
    def prompt_meta(cls, cfg: ModelConfig, prompt: GenerationFormat) -> dict[str, Any]:
        return {"prompt": PromptMeta(template=prompt.template, **chat_meta(prompt.chat)),
                "max_new_tokens": cfg.max_new_tokens}

    @classmethod
    def _load_model(cls, folder: Path, meta: RunMeta, tokenizer: Any) -> torch.nn.Module:
        return load_lm(folder, meta)

    def _prompt(self) -> GenerationFormat:
        assert self.meta.prompt is not None
        return GenerationFormat(self.tokenizer, self.meta.prompt.template, chat=saved_chat(self.tokenizer, self.meta))

    def examples_of(self, frame: pd.DataFrame, source: str, first_row: int = 1) -> Examples:
        """Rows to answer; a run trained on conversations (data.messages_column) reads each row's
        conversation, ending with the user's turn."""
        column = self.data_config.messages_column
        if column is None:
            return super().examples_of(frame, source, first_row)
        messages = conversations_of(frame, self.data_config, source, first_row, answered=False) or []
        return Examples([m[-1]["content"] for m in messages], None, None, source, parts={"messages": messages})

    def generate(self, examples: Examples | list[str], batch_size: int = 16, on_batch: OnBatch = None) -> list[str]:
        """The answer to each record's prompt (greedy, up to ``max_new_tokens``).

        Plain texts are inputs without an instruction; records from a table carry their own
        (see :meth:`examples_of`).
        """
        return generate(self.model, self.tokenizer, self.inputs(self.as_examples(examples)), batch_size,
                        self.meta.max_new_tokens or 32, self.dtype, on_batch, self.inputs.prompt.stop_ids)

    def scores(self, examples: Examples | list[str], batch_size: int = 64, on_batch: OnBatch = None,
               with_vectors: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        raise FintuneError(NO_SCORES)

    def predict(self, data: Any, batch_size: int = 64) -> Any:
        """The generated answers (a Series on a DataFrame's index, else a list)."""
        return aligned(data, self.generate(data, batch_size), "generated")

    def prediction_columns(self, out: Any, frame: pd.DataFrame | None = None) -> dict[str, Any]:
        return {"generated": list(out)}

    def predict_columns(self, rows: Any, start: int, stop: int, chunk: pd.DataFrame, batch_size: int,
                        on_batch: OnBatch = None) -> dict[str, Any]:
        return self.prediction_columns(self.generate(rows.subset(start, stop), batch_size, on_batch))

    def _save_model(self, folder: Path) -> None:
        """The LM in Hugging Face format with what a plain transformers or LLM-server user needs to
        prompt it as fintune does: the chat template it was trained with (in the tokenizer, saved
        next), and a generation config that stops where fintune stops."""
        prompt = self.inputs.prompt
        if prompt.chat is not None:
            self.tokenizer.chat_template = prompt.chat.template
        config = getattr(self.model, "generation_config", None)
        if config is not None and not self.is_adapter:
            config.eos_token_id = prompt.stop_ids if len(prompt.stop_ids) > 1 else prompt.stop_ids[0]
            config.pad_token_id = self.tokenizer.pad_token_id
            config.max_new_tokens = self.meta.max_new_tokens
        self.model.save_pretrained(folder, safe_serialization=True)

    # ------------------------------------------------------------ conversations

    def chat_format(self) -> ChatFormat:
        """The template conversations are rendered with: the run's chat template, else plain
        role lines (a model tuned on raw prompts has no template of its own)."""
        prompt = self.inputs.prompt
        return prompt.chat if prompt.chat is not None else ChatFormat(self.tokenizer, PLAIN_TEMPLATE)

    def chat_ids(self, messages: list[dict[str, str]]) -> list[int]:
        """The prompt ids of a conversation whose last turn is the user's. One user turn without a
        system message is prompted exactly as `fintune predict` prompts a text."""
        check_messages(messages)
        if len(messages) == 1:
            return self.inputs(Examples([messages[0]["content"]], None, None, "chat"))["input_ids"][0]
        text = self.chat_format().render(messages, True)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def chat_stream(self, messages: list[dict[str, str]], sampling: Sampling | None = None) -> Iterator[str]:
        """The answer to a conversation, piece by piece as it is generated."""
        sampling = sampling or Sampling(max_new_tokens=self.meta.max_new_tokens or 256)
        return stream_answer(self.model, self.tokenizer, self.chat_ids(messages), sampling,
                             self.inputs.prompt.stop_ids, self.dtype)

    def chat(self, messages: list[dict[str, str]], sampling: Sampling | None = None) -> str:
        """The whole answer to a conversation (``messages``: OpenAI-style role/content dicts)."""
        return "".join(self.chat_stream(messages, sampling)).strip()


ROLES = ("system", "user", "assistant")


def check_messages(messages: list[dict[str, str]]) -> None:
    """A conversation to answer: role/content dicts, roles known, the last turn the user's."""
    if not messages:
        raise FintuneError("the conversation holds no messages; send at least one user message")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or set(message) - {"role", "content", "name"} or "content" not in message:
            raise FintuneError(f"message {i}: give an object with 'role' and 'content'")
        if message.get("role") not in ROLES or not isinstance(message["content"], str):
            raise FintuneError(f"message {i}: role must be one of {', '.join(ROLES)} and content a string")
    if messages[-1]["role"] != "user":
        raise FintuneError("the last message must be the user's: the model answers it")
