"""Engines: where training and batch scoring run (local, torchrun, ray; spark for scoring in a
Spark job), each a registered class that declares what it runs. See :mod:`fintune.engines.base`."""

from fintune.engines import local, ray_engine  # noqa: F401  (registers the engines)
from fintune.engines.base import (
    ENGINES, Engine, PredictRequest, TrainRequest, engine_for, engine_names, register_engine,
)

__all__ = ["ENGINES", "Engine", "PredictRequest", "TrainRequest", "engine_for", "engine_names", "register_engine"]
