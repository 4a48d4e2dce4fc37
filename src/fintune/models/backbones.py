"""Backbones: registry names for models that ship offline, plus any Hugging Face id or path."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from pathlib import Path
from typing import Any

from torch import nn
from transformers import (
    AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer, PretrainedConfig,
    PreTrainedModel, PreTrainedTokenizerBase,
)

from fintune.config import ModelConfig, Task
from fintune.errors import ConfigError, FintuneError
from fintune.kinds import kind_of
from fintune.catalogue import CATALOGUE, READERS, verified_folder
from fintune.models.causal import DEFAULT_CHAT_PROMPT, DEFAULT_PROMPT, CausalClassifier, PromptFormat, label_words
from fintune.models.chat import ChatFormat, chat_template_of
from fintune.models.generation import GenerationFormat, default_prompt
from fintune.tasks import task_of


def resolve_backbone(name: str) -> str:
    """A catalogue name (``minilm``, ``mpnet``, ``smollm2``) becomes its local folder; paths and
    Hub ids pass through. A catalogue backbone not fetched yet is an error naming the command;
    one whose weights differ from the vetted ones (a flipped byte, a swapped file) is refused."""
    if name in CATALOGUE and CATALOGUE[name].kind in READERS:
        raise FintuneError(f"'{name}' reads files for data.files ({CATALOGUE[name].kind}); it is not a backbone to "
                           "fine-tune. Pick one of: " + ", ".join(n for n, b in CATALOGUE.items() if b.kind not in READERS))
    return str(verified_folder(name)) if name in CATALOGUE else name


def load_error(name: str, exc: Exception) -> FintuneError:
    """The error for a backbone that would not load, with what to check."""
    local = Path(name).exists()
    hint = (
        "check that the folder holds config.json and model.safetensors"
        if local
        else "no such local folder, and the Hugging Face Hub could not provide it "
        "(offline?); give a local path or a catalogue name: " + ", ".join(CATALOGUE)
    )
    return FintuneError(f"cannot load backbone '{name}': {hint}. ({type(exc).__name__}: {exc})")


def load_tokenizer(cfg: ModelConfig) -> PreTrainedTokenizerBase:
    """The backbone's tokenizer; a causal LM without a pad token pads with end-of-sequence."""
    path = resolve_backbone(cfg.backbone)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=cfg.trust_remote_code)
    except (OSError, ValueError) as exc:
        raise load_error(cfg.backbone, exc) from None
    if kind_of(cfg.kind).pads_with_eos and tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def chat_format(cfg: ModelConfig, tokenizer: PreTrainedTokenizerBase) -> ChatFormat | None:
    """The chat template prompts are wrapped in (``model.chat_template``), or None for raw prompts."""
    template = chat_template_of(tokenizer, cfg.chat_template)
    if template is None:
        if cfg.system_prompt is not None:
            raise FintuneError("model.system_prompt needs a chat template: this tokenizer has none (or "
                               "model.chat_template is none); give a Jinja file in model.chat_template")
        return None
    return ChatFormat(tokenizer, template, cfg.system_prompt)


def prompt_format(cfg: ModelConfig, tokenizer: PreTrainedTokenizerBase, label_names: list[str]) -> PromptFormat:
    """The instruction prompt and label words of a causal classifier."""
    chat = chat_format(cfg, tokenizer)
    default = DEFAULT_PROMPT if chat is None else DEFAULT_CHAT_PROMPT
    try:
        return PromptFormat(tokenizer, cfg.prompt or default, label_words(label_names, cfg.label_words), chat)
    except ValueError as exc:
        raise FintuneError(str(exc)) from None


def generation_format(cfg: ModelConfig, tokenizer: PreTrainedTokenizerBase,
                      has_instructions: bool) -> GenerationFormat:
    """The prompt of an instruction-tuned causal LM (task generation)."""
    chat = chat_format(cfg, tokenizer)
    try:
        return GenerationFormat(tokenizer, cfg.prompt or default_prompt(has_instructions, chat is not None),
                                chat=chat)
    except ValueError as exc:
        raise FintuneError(str(exc)) from None


def load_lm(cfg: ModelConfig, load_kwargs: dict[str, Any]) -> PreTrainedModel:
    """The causal LM as it is (``load_kwargs``: e.g. 4-bit quantization for QLoRA)."""
    try:
        with quiet_load_report():
            return AutoModelForCausalLM.from_pretrained(resolve_backbone(cfg.backbone), config=backbone_config(cfg),
                                                        use_safetensors=True, trust_remote_code=cfg.trust_remote_code,
                                                        **load_kwargs)
    except (OSError, ValueError) as exc:
        raise load_error(cfg.backbone, exc) from None


def load_causal(cfg: ModelConfig, prompt: PromptFormat, load_kwargs: dict[str, Any]) -> CausalClassifier:
    """The causal LM as a classifier over the prompt's label words."""
    return CausalClassifier(load_lm(cfg, load_kwargs), prompt.label_ids, prompt.tokenizer.pad_token_id)


def backbone_config(cfg: ModelConfig, **kwargs: object) -> PretrainedConfig:
    """The backbone's config with ``model.num_layers`` and ``model.dropout`` applied."""
    config = AutoConfig.from_pretrained(resolve_backbone(cfg.backbone), trust_remote_code=cfg.trust_remote_code,
                                        **kwargs)
    if cfg.num_layers is not None:
        # A shallower student for distillation: the first N layers keep their weights.
        if not hasattr(config, "num_hidden_layers"):
            raise FintuneError(f"model.num_layers: backbone '{cfg.backbone}' has no num_hidden_layers")
        config.num_hidden_layers = min(cfg.num_layers, config.num_hidden_layers)
    if cfg.dropout is not None:
        # Names differ across architectures; set the ones this config has.
        for attr in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout",
                     "dropout", "attention_dropout", "seq_classif_dropout"):
            if hasattr(config, attr):
                setattr(config, attr, cfg.dropout)
    return config


def load_causal_head(cfg: ModelConfig, label_names: list[str], load_kwargs: dict[str, Any],
                     task: Task = "classification") -> PreTrainedModel:
    """A causal LM with a fresh linear head on its last real token. The model finds that token
    by the pad id, so the config gets the tokenizer's (end-of-sequence where it has none)."""
    tokenizer = load_tokenizer(cfg)
    return load_model(cfg, task, label_names, pad_token_id=tokenizer.pad_token_id, **load_kwargs)


@contextlib.contextmanager
def quiet_load_report() -> Iterator[None]:
    """transformers' load report (``score.weight MISSING``) only at error level while a backbone
    loads with a new head: the head is meant to be new, and fintune records it itself
    (``fintune_newly_initialized``). The CLI is quiet anyway; this keeps notebooks quiet too."""
    from transformers.utils import logging as hf_logging

    before, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # "Loading weights: 100%" for a small model is noise too
    try:
        yield
    finally:
        hf_logging.set_verbosity(before)
        if bars:
            hf_logging.enable_progress_bar()


def load_model(cfg: ModelConfig, task: Task, label_names: list[str] | None, pad_token_id: int | None = None,
               **load_kwargs: Any) -> PreTrainedModel:
    """The backbone with a fresh head for the task; safetensors weights only."""
    path = resolve_backbone(cfg.backbone)
    kwargs: dict = {} if pad_token_id is None else {"pad_token_id": pad_token_id}
    if task_of(task).answer == "value":
        kwargs.update(num_labels=1, problem_type="regression")
    else:
        names = label_names or []
        kwargs.update(
            num_labels=len(names),
            id2label=dict(enumerate(names)),
            label2id={name: i for i, name in enumerate(names)},
            problem_type="multi_label_classification" if task_of(task).answer == "labels"
            else "single_label_classification",
        )
    try:
        config = backbone_config(cfg, **kwargs)
        with quiet_load_report():
            model, info = AutoModelForSequenceClassification.from_pretrained(
                path, config=config, use_safetensors=True, trust_remote_code=cfg.trust_remote_code,
                output_loading_info=True, **load_kwargs,
            )
    except (OSError, ValueError) as exc:
        raise load_error(cfg.backbone, exc) from None
    # Weights the checkpoint lacked were initialized at random; adapters must save them
    # (see fintune.strategies.peft_common.head_modules).
    model.fintune_newly_initialized = sorted(info.get("missing_keys", []))
    return model


def checkpoint_activations(model: nn.Module) -> None:
    """Gradient checkpointing on the transformer inside ``model`` (train.gradient_checkpointing)."""
    target = getattr(model, "lm", None) or getattr(model, "encoder", None) or model
    if not hasattr(target, "gradient_checkpointing_enable"):
        raise ConfigError("train.gradient_checkpointing needs a transformer backbone; this model has none")
    # Non-reentrant checkpointing also works when the inputs need no gradient (frozen embeddings, adapters).
    if hasattr(target, "activation_checkpointing_enable"):  # the name from transformers 5.x on
        target.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        target.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if hasattr(target, "config"):
        target.config.use_cache = False
