"""A fintune model as an MLflow model: the pyfunc flavour around :class:`FintuneModel`.

What a bank's MLOps does with an MLflow model then works on a fintune run:
``mlflow.pyfunc.load_model("models:/NAME/1")``, registry versions and aliases, ``mlflow models
serve``, batch scoring with ``mlflow.pyfunc.spark_udf``. The model folder travels as the
pyfunc's artifact, unchanged (Hugging Face format, fintune.json), and ``predict`` gives the
columns ``fintune predict`` appends: ``predicted_label`` and ``prob_<label>`` (regression:
``prediction``; multi-label: ``predicted_labels``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from fintune.predictors import FintuneModel
from fintune.rundir import MODEL, load_split, split_names

# The pyfunc's artifact key for the model folder.
ARTIFACT = "fintune_model"


class FintunePyfunc(mlflow.pyfunc.PythonModel):
    """MLflow's pyfunc interface over a saved fintune model folder."""

    def load_context(self, context: Any) -> None:
        """Load the model folder MLflow copied next to the pyfunc."""
        self.model = FintuneModel.load(context.artifacts[ARTIFACT])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """The columns ``fintune predict`` appends, one row per input row, on the input's index."""
        return scored_columns(self.model, model_input)


def scored_columns(model: FintuneModel, frame: pd.DataFrame) -> pd.DataFrame:
    """What ``fintune predict`` appends to ``frame``'s rows, as a frame of its own."""
    frame = pd.DataFrame(frame)
    rows = model.rows_for_prediction(frame, "the MLflow model's input")
    columns = model.predict_columns(rows, 0, len(frame), frame.copy(), 64)
    return pd.DataFrame(columns, index=frame.index)


def input_example(run: Path, model: FintuneModel, rows: int = 3) -> pd.DataFrame:
    """A few held-out rows of the run, without their label: what the signature is read from."""
    _, table = load_split(run, "test" if "test" in split_names(run) else "validation", model)
    label = model.data_config.label_column
    return table.drop(columns=[label], errors="ignore").head(rows).reset_index(drop=True)


def log_pyfunc(run: Path, run_id: str, register: str | None) -> str:
    """Log ``run``'s model into MLflow run ``run_id`` (the active store) as a pyfunc with its
    signature and input example; with ``register``, as a new version of that registered model.
    Returns the model's URI."""
    from mlflow.models import infer_signature

    model = FintuneModel.load(run)
    example = input_example(run, model)
    signature = infer_signature(example, scored_columns(model, example))
    with mlflow.start_run(run_id=run_id):
        info = mlflow.pyfunc.log_model(name="mlflow_model", python_model=FintunePyfunc(),
                                       artifacts={ARTIFACT: str(run / MODEL)}, signature=signature,
                                       input_example=example, registered_model_name=register,
                                       pip_requirements=[_requirement()])
    return info.model_uri


def _requirement() -> str:
    """fintune pinned to the installed version (unpinned from a source tree never installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"fintune=={version('fintune')}"
    except PackageNotFoundError:
        return "fintune"
