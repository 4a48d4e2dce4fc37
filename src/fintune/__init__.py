"""fintune: fine-tune pretrained language models for finance.

The public API is small: :func:`fit` (DataFrames in, a model out), :func:`train`,
:func:`evaluate`, :func:`predict`, :func:`data_check`, :func:`load_config`,
:class:`FintuneModel` (which owns predict and predict_proba), and the errors a user can fix
(:class:`FintuneError`; :class:`DataError` and :class:`ConfigError` are ``ValueError`` too).
The CLI calls the same functions.
"""

from __future__ import annotations

from typing import Any

from importlib.metadata import PackageNotFoundError, version

try:  # one version, pyproject.toml's, as installed
    __version__ = version("fintune")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
from fintune.errors import ConfigError, DataError, FintuneError  # light: no torch

__all__ = ["ConfigError", "DataError", "FintuneError", "FintuneModel", "RunConfig", "__version__", "data_check",
           "evaluate", "fit", "load_config", "predict", "train"]


def __getattr__(name: str) -> Any:
    # Lazy: `import fintune` stays fast; torch loads only when a function needs it.
    if name in ("fit", "train", "evaluate", "predict", "data_check"):
        from fintune import api
        return getattr(api, name)
    if name in ("load_config", "RunConfig"):
        from fintune import config
        return getattr(config, name)
    if name == "FintuneModel":
        from fintune import api  # also gives FintuneModel.fit its function (fintune.fit)
        return api.FintuneModel
    raise AttributeError(name)


def __dir__() -> list[str]:
    # The API only (tab completion, dir()): not the helpers this module imports for itself.
    return sorted(__all__)
