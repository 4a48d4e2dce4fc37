"""Every kind of saved model, loadable: :class:`FintuneModel` and the predictor registry.

``FintuneModel.load(path)`` reads ``fintune.json`` once and builds the registered class
for it (text, fusion, mlp, gbm, causal, generation, tagger). Import from here, not from
:mod:`fintune.models.predictor`, so that every kind (the tagger too) is registered.
"""

from fintune.models import kinds  # noqa: F401  (registers the kinds of fintune.models)
from fintune.models.predictor import PREDICTORS, Predictor, predictor_class
from fintune.models.reading import model_folder
from fintune.tagging import predictor as _tagger  # noqa: F401  (registers the tagger)
from fintune.tagging.predictor import TaggerPredictor

FintuneModel = Predictor  # the public name: the loader, and the base of every predictor

__all__ = ["PREDICTORS", "FintuneModel", "Predictor", "TaggerPredictor", "model_folder", "predictor_class"]
