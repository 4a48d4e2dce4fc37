"""The probe recipe (``model.kind: probe``): the sentence-level recipe whose fit step encodes
every text once with the frozen encoder, then trains the linear head on the cached vectors
with the one training loop (so DP-SGD, early stopping, checkpoints and resume apply)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fintune.config import RunConfig
from fintune.console import console
from fintune.data import Examples, PreparedData
from fintune.models.backbones import resolve_backbone
from fintune.models.inference import Inputs
from fintune.models.probe import encode_vectors
from fintune.predictors import FintuneModel
from fintune.recipes.base import TrainOptions, announce, register_recipe
from fintune.recipes.sentence import SentenceRecipe
from fintune.rundir import RunFolder
from fintune.strategies import build_strategy
from fintune.training import loop
from fintune.training.distributed import is_main_process


class _VectorInputs:
    """What the loop encodes a split into: its cached sentence vectors as feature rows."""

    def __init__(self, vectors: dict[int, np.ndarray]) -> None:
        self.vectors = vectors

    def __call__(self, examples: Examples) -> dict[str, Any]:
        return {"features": self.vectors[id(examples)]}

    pad_id = 0


@register_recipe
class ProbeRecipe(SentenceRecipe):
    """A linear layer trained on the frozen encoder's sentence vectors."""

    name = "probe"
    kinds = frozenset({"probe"})
    tasks = frozenset({"classification", "regression"})

    def fit(self, cfg: RunConfig, run: RunFolder, options: TrainOptions, data: PreparedData, inputs: Inputs,
            train_examples: Examples, objective: loop.Objective | None,
            kind: type[FintuneModel]) -> tuple[Any, loop.TrainResult]:
        model = kind.build(cfg.model, cfg.task, data.label_names, 0, None, {})
        strategy = build_strategy(cfg.strategy)
        strategy.adapt_encoder(model.encoder, resolve_backbone(cfg.model.backbone), train_examples.texts,
                               [int(y) for y in train_examples.labels], cfg.model.max_length, cfg.seed)
        console.print(f"sentence vectors of the frozen encoder, computed once for {len(train_examples):,} training "
                      f"and {len(data.validation):,} validation texts")
        vectors = {id(ex): encode_vectors(model.encoder, inputs(ex), cfg.train.eval_batch_size, inputs.pad_id)
                   for ex in (train_examples, data.validation)}
        run.start(cfg, data.report, resume=options.resume, overwrite=options.overwrite)
        result = loop.train(
            model.head, strategy, _VectorInputs(vectors), train_examples, data.validation,
            task=cfg.task, label_names=data.label_names, cfg=cfg.train, seed=cfg.seed, work_dir=run.path,
            resume=options.resume, show_progress=options.show_progress, objective=objective,
            on_evaluate=options.on_evaluate)
        return (model if is_main_process() else None), announce(result)
