"""Rules across sections of the run config: which inputs fit which model kind and task,
and what the chosen strategy supports (asked of the strategy class, never listed here).

Each rule raises ``ValueError`` with the fix; pydantic turns it into a config error that
names the file.
"""

from __future__ import annotations

from collections.abc import Iterable

from fintune.config.model_kinds import ModelConfig, TaggingSettings, as_kind
from fintune.config.sections import DataConfig, DecisionConfig, TrainConfig
from fintune.kinds import KINDS, kind_of
from fintune.strategies import STRATEGIES, strategies_for
from fintune.tasks import task_of

TAGGING_ONLY = ("data.tokens_column, data.tag_scheme, model.crf, model.case_features, model.lstm_hidden "
                "and model.feature_crf are for task token_classification")


def check_run(task: str, data: DataConfig, model: ModelConfig, strategy: str, train: TrainConfig,
              decision: DecisionConfig) -> None:
    """Every cross-section rule, in the order a user would fix them."""
    check_inputs(task, data, model)
    tags = task_of(task).answer == "tags"
    if data.split.method == "document" and not tags:
        raise ValueError("data.split.method 'document' holds out whole documents of tagged sentences "
                         "(task token_classification); use stratified, random or time")
    if tags:
        check_tagging(data, model, train, decision)
    elif data.tokens_column is not None or data.tag_scheme is not None or (
            isinstance(model, TaggingSettings)
            and (model.crf or model.case_features or model.lstm_hidden or model.feature_crf)):
        raise ValueError(TAGGING_ONLY)
    check_strategy(strategy, model.kind, task)
    if (strategy == "dpo") != (data.rejected_column is not None):
        raise ValueError("strategy dpo learns from preference pairs: set data.rejected_column (the rejected answer) "
                         "with it, and only with it")
    check_dp(train, strategy, model.kind, task)
    if data.weight_column is not None and train.loss == "focal":
        raise ValueError("data.weight_column weights each row's cross-entropy; train.loss focal does not take row "
                         "weights: use one of them")
    if (data.entity_columns is not None) != task_of(task).entity_pair:
        raise ValueError("task relation reads a sentence and its two entities: set data.entity_columns "
                         "[head, tail] with it, and only with it")
    if data.entity_columns is not None and (data.text_column is None or kind_of(model.kind).reads == "features"):
        raise ValueError("data.entity_columns marks the entities in data.text_column: set it, with a text model")
    if task_of(task).answer == "labels":
        check_multi_label(data, train, decision)
    elif data.label_separator is not None:
        raise ValueError("data.label_separator splits a cell into several labels: it is for task multi_label")
    windows = data.windows
    if windows is not None and windows.target == "direction" and task_of(task).answer != "class":
        raise ValueError("data.windows.target 'direction' is a classification task; set task: classification")


def check_inputs(task: str, data: DataConfig, model: ModelConfig) -> None:
    """The columns a model kind reads, and the tasks it can do."""
    kind = model.kind
    spec, answer = kind_of(kind), task_of(task).answer
    if spec.reads == "one_text" and (data.text_column is None or data.feature_columns is not None
                                     or data.pair_column is not None):
        raise ValueError(f"model.kind '{kind}' reads one text column: set data.text_column, without feature "
                         "or pair columns")
    if spec.reads == "one_text" and task not in spec.tasks:
        raise ValueError(f"model.kind '{kind}' is for {_listed(spec.tasks)}, not {task}")
    if spec.windows and model.long_text.stride > model.max_length - 2:
        raise ValueError(f"model.long_text.stride {model.long_text.stride} would skip tokens between windows of "
                         f"model.max_length {model.max_length}; set it at most {model.max_length - 2} "
                         "(the window less its two special tokens)")
    if spec.reads == "text" and data.text_column is not None and data.feature_columns is not None:
        raise ValueError("model.kind 'text' reads one input: set data.text_column or "
                         "data.feature_columns, not both (model.kind: fusion uses both)")
    if answer == "text" and task not in spec.tasks:
        raise ValueError("task generation needs model.kind causal: a causal LM generates the answers")
    if spec.reads == "prompt" and task not in spec.tasks:
        raise ValueError(f"model.kind '{kind}' classifies text by instruction or generates answers: task "
                         f"classification or generation, not {task}")
    if (answer == "labels" or task_of(task).entity_pair) and task not in spec.tasks:
        raise ValueError(f"task {task} needs model.kind {_listed([k for k, d in KINDS.items() if task in d.tasks])}")
    if answer == "labels" and spec.reads == "prompt" and getattr(model, "head", None) != "classifier":
        raise ValueError(f"task {task} on a causal LM needs model.head: classifier (one sigmoid output per label)")
    if getattr(model, "head", None) == "classifier" and answer not in ("class", "labels"):  # only a causal LM has model.head
        raise ValueError("model.head 'classifier' puts a classification head on a causal LM: set model.kind "
                         "causal and task classification (encoders always have one)")
    if data.instruction_column is not None and answer != "text":
        raise ValueError("data.instruction_column is for task generation")
    if data.pair_column is not None and (spec.reads != "text" or answer not in ("class", "value")):
        raise ValueError("data.pair_column (text pairs) works with model.kind 'text' and task "
                         "classification or regression")
    if data.messages_column is not None and (answer != "text" or data.text_column is not None
                                             or data.instruction_column is not None):
        raise ValueError("data.messages_column holds whole conversations (task generation): set data.text_column "
                         "and data.instruction_column to null with it")
    if spec.reads == "prompt":
        if (data.text_column is None and data.messages_column is None) or data.feature_columns is not None:
            raise ValueError("model.kind 'causal' reads text: set data.text_column, or data.messages_column for "
                             "conversations (and no feature columns)")
    elif spec.reads not in ("text", "one_text") and data.feature_columns is None:
        raise ValueError(f"model.kind '{kind}' needs data.feature_columns")
    if spec.reads == "features" and data.text_column is not None:
        raise ValueError(f"model.kind '{kind}' uses the features alone; remove data.text_column "
                         "or use model.kind: fusion")
    if spec.reads == "members":
        if task not in spec.tasks:
            raise ValueError("model.kind 'ensemble' is for classification and regression")
        for member in model.ensemble.members:
            # Features-only members read the features of a table that also has text.
            if kind_of(member).reads == "features":
                continue
            try:
                check_inputs(task, data, as_kind(model, member))
            except ValueError as exc:
                raise ValueError(f"model.ensemble.members: {member}: {exc}") from None


def check_strategy(name: str, kind: str, task: str) -> None:
    """The strategy supports the model kind and the task (its own declaration says)."""
    strategy = STRATEGIES[name]
    if kind not in strategy.kinds:
        if strategy.kinds == {"causal"}:
            raise ValueError(f"strategy {name} is for causal LMs (model.kind: causal); use lora for encoders")
        able = [n for n, cls in STRATEGIES.items() if kind in cls.kinds and task in cls.tasks]
        only = f" (strategy {name} trains model.kind {next(iter(strategy.kinds))})" if len(strategy.kinds) == 1 else ""
        raise ValueError(f"model.kind '{kind}' trains with strategy {' or '.join(able)}, not '{name}'{only}")
    if task not in strategy.tasks:
        raise ValueError(f"task {task} trains with strategy {', '.join(strategies_for(kind, task))}, "
                         f"not '{name}'")


def check_dp(train: TrainConfig, name: str, kind: str, task: str) -> None:
    """DP-SGD: a text model, a strategy that declares it, Poisson batches of one step each."""
    if train.privacy.dp is None:
        return
    dp = kind_of(kind).dp
    if dp == "head" and name == "full":
        pass  # a linear probe: DP-SGD trains its head on the cached vectors
    elif not STRATEGIES[name].dp or dp != "strategy":
        raise ValueError(f"train.privacy.dp (DP-SGD) works with model.kind probe (the best-suited: a linear "
                         f"layer on frozen sentence vectors), or text models with strategy "
                         f"{', '.join(strategies_for('text', task, dp=True))}; not model.kind '{kind}' "
                         f"with strategy '{name}'")
    if train.oversample:
        raise ValueError("train.privacy.dp samples rows at random (Poisson); turn train.oversample off")
    if train.grad_accum_steps > 1:
        raise ValueError("train.privacy.dp: one Poisson-sampled batch per noisy step; set "
                         "train.grad_accum_steps to 1 and raise train.batch_size instead")


def check_tagging(data: DataConfig, model: ModelConfig, train: TrainConfig, decision: DecisionConfig) -> None:
    """token_classification: words and tags in, a text encoder, sentence-level options off."""
    if data.tokens_column is None:
        raise ValueError("task token_classification reads words and tags: set data.tokens_column and "
                         "data.label_column (CoNLL files read as columns 'tokens' and 'tags')")
    if "token_classification" not in kind_of(model.kind).tasks or data.feature_columns is not None:
        raise ValueError("task token_classification needs model.kind 'text' and no data.feature_columns")
    if data.privacy.mask:
        raise ValueError("data.privacy.mask rewrites text and would shift the tagged words; mask "
                         "personal data before tagging, or turn it off")
    if train.privacy.dp is not None or decision.threshold != "argmax" or train.oversample:
        raise ValueError("train.privacy.dp, decision.threshold and train.oversample apply to sentence-level "
                         "tasks, not token_classification")
    if data.split.method == "time" or data.windows is not None:
        raise ValueError("token_classification splits sentences at random (data.split.method: random); "
                         "data.windows does not apply")


def check_multi_label(data: DataConfig, train: TrainConfig, decision: DecisionConfig) -> None:
    """multi_label: one sigmoid per label; the single-label decisions and losses do not apply."""
    if decision.threshold != "argmax" or train.oversample or train.class_weights or train.loss == "focal":
        raise ValueError("task multi_label decides each label by its own threshold (decision.label_thresholds); "
                         "decision.threshold, train.oversample, train.class_weights and train.loss focal are for "
                         "single-label classification")


def _listed(names: Iterable[str]) -> str:
    """Names joined with commas and a final 'or' (a set's in sorted order)."""
    items = sorted(names) if isinstance(names, (set, frozenset)) else list(names)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]
