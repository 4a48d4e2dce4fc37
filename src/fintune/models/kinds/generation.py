"""Instruction-tuned causal LMs (task generation): answers in text, greedy decoding.

No class probabilities, so nothing that needs them applies (serving, ONNX, calibration,
fairness, explanations); `fintune predict` and `fintune evaluate` answer in batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from fintune.data import Examples
from fintune.errors import FintuneError
from fintune.models.generation import GenerationFormat, generate
from fintune.config import ModelConfig
from fintune.models.backbones import generation_format
from fintune.models.backbones import load_lm as new_lm
from fintune.models.kinds.causal import CAUSAL_ONNX, chat_meta, load_lm, saved_chat
from fintune.models.metadata import PromptMeta, RunMeta
from fintune.models.predictor import OnBatch, Predictor, aligned, register_predictor

NO_SCORES = ("a generation run answers in text and has no class probabilities or values to "
             "score; use `fintune predict` (FintuneModel.generate) and `fintune evaluate`")


@register_predictor("generation")
class GenerationPredictor(Predictor):
    """``task: generation``: the LM answers each record's prompt."""

    servable = ("the server answers with class probabilities or values, so it serves classification and "
                "regression runs. Generate answers or tag entities in batch with `fintune predict`")
    onnx_export = CAUSAL_ONNX
    has_scores = False

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
