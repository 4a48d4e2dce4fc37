"""One predictor class per model kind, each registered by name (see :mod:`fintune.models.predictor`).

Importing this package registers the kinds defined under ``models``; the tagger registers
itself in :mod:`fintune.tagging.predictor`. :mod:`fintune.predictors` imports both.
"""

import importlib
import pkgutil

# Every module of this package registers its predictor class on import: a new kind is a new file.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
