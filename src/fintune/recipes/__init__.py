"""Training recipes, one shape each: ``recipe(cfg, run, options) -> RecipeResult``.

- :mod:`~fintune.recipes.sentence`: text, fusion, mlp and causal models (one label, value
  or answer per text or row);
- :mod:`~fintune.recipes.gbm`: LightGBM on the features;
- :mod:`~fintune.recipes.tagging`: token classification.
"""

from fintune.recipes import gbm, sentence, tagging  # noqa: F401  (registers them)
from fintune.recipes.base import RECIPES, Recipe, RecipeResult, TrainOptions, recipe_for, register_recipe

__all__ = ["RECIPES", "Recipe", "RecipeResult", "TrainOptions", "recipe_for", "register_recipe"]
