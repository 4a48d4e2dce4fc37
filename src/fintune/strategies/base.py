"""The strategy interface and its registry.

A strategy decides which parameters train and with which learning rate; the one training
loop in :mod:`fintune.training.loop` does the rest. Each strategy lives in its own file,
declares a typed config and what it supports (model kinds, tasks, DP-SGD, several
processes), and registers itself by name; the config's cross-checks ask the class.

Nothing here imports torch at import time: validating a config reads these classes, and
torch loads only when a strategy touches a model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from fintune.kinds import kind_names
from fintune.tasks import task_names
from fintune.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn
    from torch.optim import Optimizer
    from torch.optim.lr_scheduler import LRScheduler

# What the config knows of models and tasks, spelled once for the strategies' declarations.
ALL_KINDS = frozenset(kind_names())
ALL_TASKS = frozenset(task_names())


class StrategyConfig(BaseModel):
    """Base of every strategy's config; ``name`` selects the registered strategy."""

    model_config = ConfigDict(extra="forbid")
    name: str


class Strategy:
    """Base class: override :meth:`prepare` (and optionally the hooks) in a subclass."""

    name: ClassVar[str]
    Config: ClassVar[type[StrategyConfig]]
    # What the strategy can train; the config refuses anything else, naming the alternatives.
    kinds: ClassVar[frozenset[str]] = frozenset({"text"})
    tasks: ClassVar[frozenset[str]] = ALL_TASKS
    dp: ClassVar[bool] = False  # DP-SGD: a fixed set of trainable parameters with per-example gradients
    # A training objective of its own (fintune.training.preference.OBJECTIVES), e.g. DPO's
    # "preference"; None: the task's loss on each record's label or answer.
    objective: ClassVar[str | None] = None
    multi_process: ClassVar[bool] = True
    # Whether its model reads packed batches as it reads padded ones (train.packing); prompt
    # learning prepends virtual tokens in the PEFT wrapper's forward, which packing bypasses.
    packable: ClassVar[bool] = True

    @classmethod
    def supports(cls, kind: str, task: str) -> bool:
        """Whether this strategy trains a model of ``kind`` for ``task``."""
        return kind in cls.kinds and task in cls.tasks

    def __init__(self, config: StrategyConfig) -> None:
        self.config = config

    def prepare(self, model: nn.Module) -> nn.Module:
        """Set ``requires_grad`` (or wrap the model) before training; return the model."""
        return model

    def load_kwargs(self) -> dict[str, Any]:
        """Extra ``from_pretrained`` arguments for the backbone (QLoRA loads it in 4 bits)."""
        return {}

    def param_groups(self, model: nn.Module, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        """Optimizer groups over the trainable parameters, one learning rate."""
        return split_decay([(n, p) for n, p in model.named_parameters() if p.requires_grad], lr, weight_decay)

    def schedule(self, optimizer: Optimizer, total_steps: int, warmup_steps: int) -> LRScheduler:
        """Learning-rate schedule: linear warmup, then linear decay to zero."""
        from transformers import get_linear_schedule_with_warmup

        return get_linear_schedule_with_warmup(optimizer, warmup_steps, total_steps)

    def on_step(self, model: nn.Module, step: int, total_steps: int) -> None:
        """Called before every optimizer step; for strategies that change what trains when.

        It must depend only on ``step`` so that a resumed run trains the same parameters.
        """

    def adapt_encoder(self, encoder: nn.Module, backbone: str, texts: list[str], labels: list[int],
                      max_length: int, seed: int) -> None:
        """Change a frozen encoder (``model.kind: probe``) in place before its sentence vectors are
        computed, from the training texts and labels; nothing here (SetFit tunes it on pairs)."""

    def finalize(self, model: nn.Module) -> nn.Module:
        """The model to save after training (e.g. adapters merged into the weights)."""
        return model



def split_decay(named: list[tuple[str, nn.Parameter]], lr: float, weight_decay: float) -> list[dict[str, Any]]:
    """Two optimizer groups: no weight decay on biases and LayerNorm weights, as BERT does."""
    decay = [p for n, p in named if p.ndim >= 2 and "LayerNorm" not in n]
    no_decay = [p for n, p in named if p.ndim < 2 or "LayerNorm" in n]
    return [
        {"params": decay, "lr": lr, "weight_decay": weight_decay},
        {"params": no_decay, "lr": lr, "weight_decay": 0.0},
    ]


STRATEGIES: dict[str, type[Strategy]] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator: make a strategy available under ``cls.name``."""
    STRATEGIES[cls.name] = cls
    return cls


def strategies_for(kind: str, task: str, *, dp: bool = False) -> list[str]:
    """Names of the registered strategies that train ``kind`` for ``task`` (with DP-SGD)."""
    return [name for name, cls in STRATEGIES.items() if cls.supports(kind, task) and (cls.dp or not dp)]


def strategy_config(raw: Any) -> StrategyConfig:
    """Validate a strategy config dict against the config class of the strategy it names."""
    if isinstance(raw, StrategyConfig):
        return raw
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict) or "name" not in raw:
        raise ConfigError(f"strategy needs a name, one of: {', '.join(sorted(STRATEGIES))}")
    name = raw["name"]
    if name not in STRATEGIES:
        import difflib

        near = difflib.get_close_matches(str(name), STRATEGIES, n=1)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        raise ConfigError(
            f"unknown strategy '{name}'{hint} Known strategies: {', '.join(sorted(STRATEGIES))}"
        )
    return STRATEGIES[name].Config.model_validate(raw)


def build_strategy(config: StrategyConfig) -> Strategy:
    """Instantiate the registered strategy for a validated config."""
    return STRATEGIES[config.name](config)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """Return (trainable, total) parameter counts."""
    total = trainable = 0
    for param in model.parameters():
        total += param.numel()
        if param.requires_grad:
            trainable += param.numel()
    return trainable, total


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The stack of transformer blocks of a Hugging Face encoder, bottom first."""
    from torch import nn

    base = getattr(model, "base_model", model)
    for path in ("encoder.layer", "transformer.layer", "encoder.layers", "layers", "h"):
        obj: Any = base
        for attr in path.split("."):
            obj = getattr(obj, attr, None)
            if obj is None:
                break
        if isinstance(obj, nn.ModuleList):
            return obj
    raise ConfigError(
        f"cannot find the transformer layers of {type(model).__name__}; "
        "use strategy 'full' for this backbone"
    )


def head_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """Parameters outside the encoder body: the task head, plus BERT's pooler feeding it."""
    from torch import nn

    base = getattr(model, "base_model", None)
    body = {id(p) for p in base.parameters()} if base is not None and base is not model else set()
    pooler = getattr(base, "pooler", None)
    pooled = {id(p) for p in pooler.parameters()} if isinstance(pooler, nn.Module) else set()
    return [(n, p) for n, p in model.named_parameters() if id(p) not in body or id(p) in pooled]
