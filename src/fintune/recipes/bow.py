"""The bag-of-words recipe (``model.kind: bow``): the sentence-level recipe with TF-IDF and a
cross-validated linear model as its fit step."""

from __future__ import annotations

from typing import Any

from fintune.config import RunConfig
from fintune.console import console
from fintune.data import Examples, PreparedData
from fintune.models.inference import Inputs
from fintune.models.kinds.bow import BowModel
from fintune.predictors import FintuneModel
from fintune.recipes.base import TrainOptions, register_recipe
from fintune.recipes.sentence import SentenceRecipe
from fintune.rundir import RunFolder
from fintune.training import loop


@register_recipe
class BowRecipe(SentenceRecipe):
    """TF-IDF on the training texts, then logistic (ridge) regression, C by cross-validation."""

    name = "bow"
    kinds = frozenset({"bow"})
    tasks = frozenset({"classification", "regression", "multi_label", "relation"})

    def fit(self, cfg: RunConfig, run: RunFolder, options: TrainOptions, data: PreparedData, inputs: Inputs,
            train_examples: Examples, objective: loop.Objective | None,
            kind: type[FintuneModel]) -> tuple[Any, loop.TrainResult]:
        run.start(cfg, data.report, resume=options.resume, overwrite=options.overwrite)
        model = BowModel.fit(cfg.model.linear, cfg.model.bow, cfg.task, len(data.label_names or [None]),
                             list(train_examples.texts), train_examples.labels, cfg.seed)
        unit = "words" if cfg.model.bow.analyzer == "word" else "characters"
        console.print(f"TF-IDF over {len(model.vocabulary):,} {unit} and their n-grams (up to "
                      f"{cfg.model.bow.ngram_max}); linear model with C = "
                      f"{model.linear.c:g} ({cfg.model.linear.folds}-fold cross-validation on training)")
        params = int(model.linear.coef.size + model.linear.intercept.size)
        return model, loop.TrainResult.fitted("cross-validated loss", len(train_examples), model.train_seconds, params,
                                              "fp64", C=model.linear.c)
