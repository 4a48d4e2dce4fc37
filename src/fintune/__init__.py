"""fintune: fine-tune pretrained language models for finance.

The public API is small: :func:`train`, :func:`evaluate`, :func:`predict`,
:func:`data_check`, :func:`load_config` and :class:`FintuneModel` (which owns predict).
The CLI calls the same functions.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["FintuneModel", "RunConfig", "data_check", "evaluate", "load_config", "predict", "train"]


def __getattr__(name: str) -> Any:
    # Lazy: `import fintune` stays fast; torch loads only when a function needs it.
    if name in ("train", "evaluate", "predict", "data_check"):
        from fintune import api
        return getattr(api, name)
    if name in ("load_config", "RunConfig"):
        from fintune import config
        return getattr(config, name)
    if name == "FintuneModel":
        from fintune.predictors import FintuneModel
        return FintuneModel
    raise AttributeError(name)
