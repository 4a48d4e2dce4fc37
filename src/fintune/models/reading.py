"""What a predictor reads and where it lives: inputs in every accepted form (DataFrames,
Datasets, lists of texts), the folder of a saved model, and the base model under an adapter."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fintune.data import Examples
from fintune.errors import FintuneError
from fintune.models.backbones import resolve_backbone
from fintune.models.metadata import META, RunMeta

ADAPTER = "adapter_config.json"


def model_folder(path: str | Path) -> Path:
    """The folder holding ``fintune.json``: the run's ``model`` folder, or ``path`` itself."""
    path = Path(path)
    folder = path / "model" if (path / "model" / META).exists() else path
    if not (folder / META).exists():
        raise FintuneError(f"{path} is not a fintune run or model folder (no {META}); "
                           "give the output_dir of a finished `fintune train`")
    return folder


INPUTS = "a pandas DataFrame, a Hugging Face Dataset, a list of texts or fintune.data.Examples"


def to_examples(data: Any, of_frame: Callable[[pd.DataFrame, str], Examples] | None) -> Examples:
    """``data`` as model input; anything that is not one of :data:`INPUTS` is a TypeError
    (a DataFrame iterated as a list would give its column names, a wrong answer without error)."""
    if isinstance(data, Examples):
        return data
    if hasattr(data, "to_pandas") and hasattr(data, "column_names"):  # datasets.Dataset, without importing it
        data = data.to_pandas()
    if isinstance(data, pd.DataFrame):
        if of_frame is None:
            raise TypeError("rows of a table need the model's column mapping: use FintuneModel.predict(frame)")
        return of_frame(data, "DataFrame")
    if isinstance(data, str):
        raise TypeError("give a list of texts, not one string: predict([text])")
    if isinstance(data, (list, tuple, pd.Series, np.ndarray)):
        texts = list(data)
        bad = next((t for t in texts if not isinstance(t, str)), None)
        if bad is not None:
            raise TypeError(f"a list of inputs must hold texts; found {type(bad).__name__} {bad!r:.40}. For table "
                            f"rows give a DataFrame")
        return Examples(texts, None, None, "input")
    raise TypeError(f"fintune models read {INPUTS}; got {type(data).__name__}")


def aligned(data: Any, values: list[Any], name: str) -> Any:
    """``values`` as a Series on the index of a DataFrame or Series input, else as a list."""
    if isinstance(data, (pd.DataFrame, pd.Series)):
        return pd.Series(values, index=data.index, name=name)
    return values


def adapter_base(folder: Path, meta: RunMeta) -> str | None:
    """The base model under a PEFT adapter saved in ``folder`` (None: no adapter there).

    The registry name resolves on this machine; the recorded path is the fallback.
    """
    if not (folder / ADAPTER).exists():
        return None
    return resolve_backbone(meta.backbone) if meta.backbone else meta.base_model
