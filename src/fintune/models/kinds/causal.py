"""Causal LMs as classifiers: the label words of the prompt scored as answers.

Served like a text model; not exported to ONNX (the label scoring runs in Python around the
LM) and not explained (Integrated Gradients here attributes an encoder's embeddings).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM

from fintune.config import ModelConfig
from fintune.models.backbones import load_causal, prompt_format
from fintune.models.causal import CausalClassifier, PromptFormat
from fintune.models.chat import ChatFormat
from fintune.models.metadata import PromptMeta, RunMeta
from fintune.models.predictor import Predictor, register_predictor
from fintune.models.reading import ADAPTER, adapter_base

CAUSAL_ONNX = ("ONNX export of causal LMs is not supported yet (the label scoring runs in "
               "Python around the LM); serve the run with torch, or export --format hf")


def chat_meta(chat: ChatFormat | None) -> dict[str, Any]:
    """What fintune.json keeps of a prompt's chat template, so a loaded model prompts the same way."""
    return {} if chat is None else {"chat_template": chat.template, "system_prompt": chat.system}


def saved_chat(tokenizer: Any, meta: RunMeta) -> ChatFormat | None:
    """The chat template a saved model was trained with (None: raw prompts)."""
    assert meta.prompt is not None
    if meta.prompt.chat_template is None:
        return None
    return ChatFormat(tokenizer, meta.prompt.chat_template, meta.prompt.system_prompt)


def load_lm(folder: Path, meta: RunMeta) -> torch.nn.Module:
    """The LM saved in ``folder``, or its base with the LoRA adapter saved there."""
    if not (folder / ADAPTER).exists():
        return AutoModelForCausalLM.from_pretrained(folder, use_safetensors=True)
    from peft import PeftModel

    base = AutoModelForCausalLM.from_pretrained(adapter_base(folder, meta), use_safetensors=True)
    return PeftModel.from_pretrained(base, folder)


@register_predictor("causal")
class CausalPredictor(Predictor):
    """``model.kind: causal``, task classification."""
    card_origin = ("the causal LM `{backbone}` ({strategy}) scoring one label word per class after its prompt; "
                   "the class probabilities are the label words' next-token probabilities")

    onnx_export = CAUSAL_ONNX

    @classmethod
    def build(cls, cfg: ModelConfig, task: str, label_names: list[str] | None, n_features: int, prompt: Any,
              load_kwargs: dict[str, Any]) -> torch.nn.Module:
        return load_causal(cfg, prompt, load_kwargs)

    @classmethod
    def new_prompt(cls, cfg: ModelConfig, tokenizer: Any, label_names: list[str] | None,
                   has_instructions: bool) -> PromptFormat:
        return prompt_format(cfg, tokenizer, label_names or [])

    @classmethod
    def prompt_meta(cls, cfg: ModelConfig, prompt: PromptFormat) -> dict[str, Any]:
        return {"prompt": PromptMeta(template=prompt.template, label_words=prompt.label_words,
                                     **chat_meta(prompt.chat))}

    @classmethod
    def _load_model(cls, folder: Path, meta: RunMeta, tokenizer: Any) -> torch.nn.Module:
        prompt = cls._format(tokenizer, meta)
        return CausalClassifier(load_lm(folder, meta), prompt.label_ids, tokenizer.pad_token_id)

    @staticmethod
    def _format(tokenizer: Any, meta: RunMeta) -> PromptFormat:
        assert meta.prompt is not None and meta.prompt.label_words is not None
        return PromptFormat(tokenizer, meta.prompt.template, meta.prompt.label_words, saved_chat(tokenizer, meta))

    def _prompt(self) -> PromptFormat:
        return self._format(self.tokenizer, self.meta)

    def _save_model(self, folder: Path) -> None:
        self.model.lm.save_pretrained(folder, safe_serialization=True)  # the LM in HF format: it loads anywhere

    def _with_merged(self, merged: torch.nn.Module) -> torch.nn.Module:
        return CausalClassifier(merged, self.model.label_ids, self.model.pad_id)
