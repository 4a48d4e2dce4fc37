"""The LightGBM recipe (``model.kind: gbm``): the sentence-level recipe with trees in place
of the training loop. Features, calibration, threshold and evaluation are shared."""

from __future__ import annotations

from typing import Any

from fintune.config import RunConfig
from fintune.console import console
from fintune.data import Examples, PreparedData
from fintune.models.gbm import GBMModel
from fintune.models.inference import Inputs
from fintune.predictors import FintuneModel
from fintune.recipes.base import TrainOptions, register_recipe
from fintune.recipes.sentence import SentenceRecipe
from fintune.rundir import RunFolder
from fintune.training import loop


@register_recipe
class GBMRecipe(SentenceRecipe):
    """Gradient-boosted trees on the encoded features, early-stopped on validation loss."""

    name = "gbm"
    kinds = frozenset({"gbm"})
    tasks = frozenset({"classification", "regression"})

    def fit(self, cfg: RunConfig, run: RunFolder, options: TrainOptions, data: PreparedData, inputs: Inputs,
            train_examples: Examples, objective: loop.Objective | None,
            kind: type[FintuneModel]) -> tuple[Any, loop.TrainResult]:
        run.start(cfg, data.report, resume=options.resume, overwrite=options.overwrite)
        console.print("training LightGBM on the features")
        validation = data.validation
        gbm = GBMModel.fit(cfg.model.gbm, cfg.task, len(data.label_names or [None]), inputs(train_examples)["features"],
                           train_examples.labels, inputs(validation)["features"], validation.labels, cfg.seed,
                           cfg.train.num_threads)
        trees = sum(b.best_iteration or b.current_iteration() for b in gbm.boosters)
        rounds = sum(b.current_iteration() for b in gbm.boosters)
        result = loop.TrainResult.fitted(
            "validation loss", len(train_examples), gbm.train_seconds, trees, "fp64", best_step=trees,
            global_step=rounds, stopped_early=trees < cfg.model.gbm.n_estimators * cfg.model.gbm.bags,
            samples=len(train_examples) * rounds)
        return gbm, result
