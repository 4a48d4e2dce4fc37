"""What every recipe shares: its options, its result, the registry, and the pieces written
once (the training summary, the held-out splits).

A recipe turns a validated config into a trained, evaluated predictor. All recipes have one
shape, ``recipe(cfg, run, options) -> RecipeResult``, and one order of work: prepare data
and backbone (nothing written yet), ``run.start`` (config and data report), train,
evaluate each held-out split into ``run/eval``. ``fintune.api.train`` then saves the model
with ``run.finish``. Each recipe declares the model kinds and tasks it trains, as strategies
do; :func:`recipe_for` asks them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from fintune.config import RunConfig
from fintune.console import console
from fintune.data import Examples
from fintune.errors import ConfigError
from fintune.models.metadata import DistillMeta
from fintune.predictors import FintuneModel
from fintune.rundir import RunFolder
from fintune.training import loop
from fintune.training.distributed import is_main_process


@dataclass
class TrainOptions:
    """How to run a recipe, beyond the config: resume, progress, and hooks.

    ``objective_for`` lets distillation swap the training examples and loss (``distilled``
    then records where the soft targets came from); ``on_evaluate`` sees each validation
    result (hyperparameter search prunes with it).
    """

    resume: bool = False
    overwrite: bool = False
    show_progress: bool = True
    on_evaluate: Callable[[int, dict[str, Any]], None] | None = None
    objective_for: Callable[[Examples], tuple[Examples, loop.Objective]] | None = None
    distilled: DistillMeta | None = None


@dataclass
class RecipeResult:
    """A trained model and what was measured; ``model`` is None in all but the first of
    several processes (only the first evaluates and saves)."""

    model: FintuneModel | None
    metrics: dict[str, Any]
    training: dict[str, Any]
    report: dict[str, Any]


class Recipe:
    """Base of the recipes: subclasses set ``name``, ``kinds``, ``tasks`` and implement ``__call__``."""

    name: ClassVar[str]
    kinds: ClassVar[frozenset[str]]
    tasks: ClassVar[frozenset[str]]

    def __call__(self, cfg: RunConfig, run: RunFolder, options: TrainOptions) -> RecipeResult:
        raise NotImplementedError


RECIPES: dict[str, Recipe] = {}


def register_recipe(cls: type[Recipe]) -> type[Recipe]:
    """Class decorator: make a recipe available under ``cls.name``."""
    RECIPES[cls.name] = cls()
    return cls


def recipe_for(cfg: RunConfig) -> Recipe:
    """The registered recipe that trains ``cfg.model.kind`` for ``cfg.task``."""
    for recipe in RECIPES.values():
        if cfg.model.kind in recipe.kinds and cfg.task in recipe.tasks:
            return recipe
    raise ConfigError(f"no recipe trains model.kind '{cfg.model.kind}' for task {cfg.task}")


def announce(result: loop.TrainResult) -> loop.TrainResult:
    """The loop's result, after the trainable-parameter line (first process only)."""
    if is_main_process():
        if result.processes > 1:
            console.print(f"{result.processes} processes; weights identical on every rank: {result.ranks_in_sync}")
        console.print(f"trainable parameters: {result.trainable_params:,} of {result.total_params:,} "
                      f"({100 * result.trainable_params / result.total_params:.2f}%)")
    return result


def training_summary(result: loop.TrainResult) -> dict[str, Any]:
    """What metrics.json records of the loop (its history stays in history.jsonl), printed
    as the trainable-parameter line on the first process."""
    return announce(result).summary()


def held_out(validation: Examples, test: Examples | None) -> dict[str, Examples]:
    """The splits evaluated after training, by name; an empty test split is left out."""
    return {name: ex for name, ex in (("validation", validation), ("test", test)) if ex is not None and len(ex)}


__all__ = ["RECIPES", "Recipe", "RecipeResult", "TrainOptions", "held_out", "recipe_for",
           "register_recipe", "training_summary", "announce"]
