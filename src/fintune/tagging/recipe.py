"""The token_classification recipe: tagged sentences in, a saved tagger and entity scores out.

It shares the training loop with every other task: the loop gets the tagger, the subword
rows of :class:`TagInputs`, the :class:`TagLoss` objective and an evaluator that scores
entities on the validation sentences.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console

from fintune.config import RunConfig
from fintune.data import Examples
from fintune.errors import FintuneError
from fintune.models.backbones import (
    backbone_config, checkpoint_activations, load_error, load_tokenizer, resolve_backbone,
)
from fintune.strategies import build_strategy
from fintune.tagging.data import TaggedData, prepare_tagged, print_tagging_report
from fintune.tagging.metrics import entity_scores, write_tagging_evaluation
from fintune.tagging.model import TagInputs, TagLoss, TokenTagger, build_tagger, predict_tags, tag_config_kwargs
from fintune.training import loop
from fintune.training.distributed import is_main_process

console = Console(stderr=True)


def train_tagger(cfg: RunConfig, run_dir: Path, *, resume: bool, show_progress: bool,
                 on_evaluate: Callable[[int, dict[str, Any]], None] | None,
                 start_run: Callable[[dict[str, Any]], None]) -> tuple[Any, dict[str, Any], dict[str, Any], dict]:
    """Train and evaluate a tagger; returns (model, metrics, training, data report), the model
    None in all but the first of several processes.

    ``start_run`` is called with the data report once data and backbone are known good,
    before anything is trained (it writes the run directory).
    """
    from fintune.models.fintune_model import FintuneModel

    tokenizer = load_tokenizer(cfg.model)
    if not getattr(tokenizer, "is_fast", False):
        raise FintuneError(f"token_classification needs a fast tokenizer (word alignment); backbone "
                           f"'{cfg.model.backbone}' has only a slow one")
    data = prepare_tagged(cfg.data, cfg.seed)
    print_tagging_report(data.report, console)
    loop.check_metric(cfg.train, data.validation, cfg.task, data.tags)
    strategy = build_strategy(cfg.strategy)
    model = _build(cfg, data)
    if cfg.train.gradient_checkpointing:
        checkpoint_activations(model)
    model = strategy.prepare(model)
    inputs = TagInputs(tokenizer, cfg.model.max_length, {t: i for i, t in enumerate(data.tags)},
                       cfg.model.case_features)
    start_run(data.report)
    result = loop.train(
        model, strategy, inputs, data.train, data.validation, task=cfg.task, label_names=data.tags,
        cfg=cfg.train, seed=cfg.seed, work_dir=run_dir, resume=resume, show_progress=show_progress,
        objective=TagLoss(inputs(data.train), model.crf), on_evaluate=on_evaluate,
        evaluator=_entity_evaluator(data.validation, inputs, data.tags, cfg.train.eval_batch_size),
    )
    training = {k: v for k, v in asdict(result).items() if k != "history"}
    if not is_main_process():  # several processes: the first one evaluates and saves
        return None, {"training": training}, training, data.report
    console.print(f"trainable parameters: {result.trainable_params:,} of {result.total_params:,} "
                  f"({100 * result.trainable_params / result.total_params:.2f}%)")
    fmodel = FintuneModel(strategy.finalize(model), tokenizer, {
        "task": cfg.task, "kind": "text", "label_names": data.tags, "scheme": data.scheme, "crf": cfg.model.crf,
        "case_features": cfg.model.case_features, "lstm_hidden": cfg.model.lstm_hidden,
        "max_length": cfg.model.max_length, "data": cfg.data.model_dump(mode="json"),
        "backbone": cfg.model.backbone, "base_model": resolve_backbone(cfg.model.backbone),
        "strategy": cfg.strategy.name,
    })
    metrics: dict[str, Any] = {"label_names": data.tags, "scheme": data.scheme}
    for name, examples in (("validation", data.validation), ("test", data.test)):
        if examples is not None:
            predicted = fmodel.tags(examples, cfg.train.eval_batch_size)
            metrics[name] = write_tagging_evaluation(run_dir / "eval" / name, list(examples.labels), predicted,
                                                     examples.tokens or [], f"{name} ({Path(examples.source).name})")
    return fmodel, metrics, training, data.report


def _build(cfg: RunConfig, data: TaggedData) -> TokenTagger:
    path = resolve_backbone(cfg.model.backbone)
    try:
        return build_tagger(cfg.model, path, data.tags, data.scheme,
                            backbone_config(cfg.model, **tag_config_kwargs(data.tags)))
    except (OSError, ValueError) as exc:
        raise load_error(cfg.model.backbone, exc) from None


def _entity_evaluator(validation: Examples, inputs: TagInputs, tags: list[str], batch_size: int) -> loop.Evaluator:
    gold = list(validation.labels)
    n_words = [len(t) for t in validation.tokens or []]

    def evaluate(model: Any, encoded: dict[str, Any], dtype: Any) -> dict[str, Any]:
        ids, _ = predict_tags(model, encoded, n_words, batch_size, inputs.pad_id, dtype)
        scores = entity_scores(gold, [[tags[i] for i in row] for row in ids])
        return {k: v for k, v in scores.items() if k != "per_type"}
    return evaluate
