"""Training recipes, one shape each: ``recipe(cfg, run, options) -> RecipeResult``.

- :mod:`~fintune.recipes.sentence`: text, fusion, mlp and causal models (one label, value
  or answer per text or row);
- :mod:`~fintune.recipes.gbm`: LightGBM on the features; :mod:`~fintune.recipes.linear`:
  logistic (ridge) regression on the features;
- :mod:`~fintune.recipes.ensemble`: several of those kinds, weighted on validation;
- :mod:`~fintune.recipes.tagging`: token classification.

Each module here is imported with the package, so a recipe registers itself by being a file.
"""

import importlib
import pkgutil

from fintune.recipes.base import RECIPES, Recipe, RecipeResult, TrainOptions, recipe_for, register_recipe

# Every module of this package registers its recipe on import: a new recipe is a new file.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["RECIPES", "Recipe", "RecipeResult", "TrainOptions", "recipe_for", "register_recipe"]
