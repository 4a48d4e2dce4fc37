"""One predictor class per model kind, each registered by name (see :mod:`fintune.models.predictor`).

Importing this package registers the kinds defined under ``models``; the tagger registers
itself in :mod:`fintune.tagging.predictor`. :mod:`fintune.predictors` imports both.
"""

from fintune.models.kinds import (  # noqa: F401  (registers)
    causal, causal_head, ensemble, gbm, generation, linear, long_text, probe, tabular, text,
)
