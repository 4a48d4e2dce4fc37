"""The linear recipe (``model.kind: linear``): the sentence-level recipe with a cross-validated
logistic (or ridge) regression as its fit step."""

from __future__ import annotations

from typing import Any

from fintune.config import RunConfig
from fintune.console import console
from fintune.data import Examples, PreparedData
from fintune.models.inference import Inputs
from fintune.models.linear import LinearModel
from fintune.predictors import FintuneModel
from fintune.recipes.base import TrainOptions, register_recipe
from fintune.recipes.sentence import SentenceRecipe
from fintune.rundir import RunFolder
from fintune.training import loop
from fintune.tasks import task_of


@register_recipe
class LinearRecipe(SentenceRecipe):
    """Logistic regression on the features, C by K-fold cross-validation on the training split."""

    name = "linear"
    kinds = frozenset({"linear"})
    tasks = frozenset({"classification", "regression"})

    def fit(self, cfg: RunConfig, run: RunFolder, options: TrainOptions, data: PreparedData, inputs: Inputs,
            train_examples: Examples, objective: loop.Objective | None,
            kind: type[FintuneModel]) -> tuple[Any, loop.TrainResult]:
        run.start(cfg, data.report, resume=options.resume, overwrite=options.overwrite)
        model = LinearModel.fit(cfg.model.linear, cfg.task, len(data.label_names or [None]),
                                inputs(train_examples)["features"], train_examples.labels, cfg.seed)
        console.print(f"{'ridge' if task_of(cfg.task).answer == 'value' else 'logistic'} regression on the features, "
                      f"C = {model.c:g} ({cfg.model.linear.folds}-fold cross-validation on training)")
        params = int(model.coef.size + model.intercept.size)
        metric = "cross-validated " + ("mse" if task_of(cfg.task).answer == "value" else "log loss")
        result = loop.TrainResult.fitted(metric, len(train_examples), model.train_seconds, params, "fp64", C=model.c)
        return model, result
