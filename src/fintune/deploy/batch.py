"""A model loaded once that scores pandas batches: what the Ray Data and Spark engines run in
each worker. Its columns are `fintune predict`'s (the same code computes them), so every
engine writes the same labels and probabilities."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from fintune.errors import FintuneError
from fintune.predictors import FintuneModel


class BatchScorer:
    """``scorer(frame)`` is ``frame`` plus the prediction columns, for a torch run folder or an
    ONNX export folder (int8 included). Load it once per worker."""

    def __init__(self, run: str | Path, *, batch_size: int = 64, threads: int | None = None) -> None:
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.model = FintuneModel.load(run, threads=threads)
        self.batch_size = batch_size
        if self.model.data_config.windows is not None:
            raise FintuneError("a model over data.windows builds each row from the rows before it, which a batch "
                               "engine splits apart; score the price table with `fintune predict`")

    def columns(self, frame: pd.DataFrame, source: str = "batch") -> dict[str, Any]:
        """The prediction columns for the rows of ``frame``."""
        frame = frame.reset_index(drop=True)
        rows = self.model.rows_for_prediction(frame, source)
        return self.model.predict_columns(rows, 0, len(frame), frame, self.batch_size)

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.copy()
        for name, values in self.columns(frame).items():
            out[name] = list(values) if isinstance(values, list) else values
        return out

