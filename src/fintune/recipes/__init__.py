"""Training recipes, one shape each: ``recipe(cfg, run, options) -> RecipeResult``.

- :mod:`~fintune.recipes.sentence`: text, fusion, mlp and causal models (one label, value
  or answer per text or row);
- :mod:`~fintune.recipes.gbm`: LightGBM on the features; :mod:`~fintune.recipes.linear`:
  logistic (ridge) regression on the features;
- :mod:`~fintune.recipes.ensemble`: several of those kinds, weighted on validation;
- :mod:`~fintune.recipes.tagging`: token classification.
"""

from fintune.recipes import ensemble, gbm, linear, probe, sentence, tagging  # noqa: F401  (registers them)
from fintune.recipes.base import RECIPES, Recipe, RecipeResult, TrainOptions, recipe_for, register_recipe

__all__ = ["RECIPES", "Recipe", "RecipeResult", "TrainOptions", "recipe_for", "register_recipe"]
