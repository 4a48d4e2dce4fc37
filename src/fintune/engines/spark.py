"""Batch prediction on Spark: a pandas UDF built by ``pyspark.ml.functions.predict_batch_udf``
(Spark >= 3.4), which loads the model once per executor Python worker and feeds it batches.

    udf = fintune.engines.spark.predict_udf("runs/tfns_full")
    scored = df.withColumn("fintune", udf(*udf.columns))   # a struct: predicted_label, prob_<label>...
    scored.select("text", "fintune.*")

``udf.columns`` are the columns the model reads (the text column, feature columns...), in
the order the UDF takes them; the struct's fields are `fintune predict`'s columns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fintune.errors import FintuneError, needs
from fintune.models.metadata import RunMeta
from fintune.models.reading import model_folder
from fintune.tasks import task_of


def predict_udf(run: str | Path, *, batch_size: int = 256, threads: int | None = None) -> Any:
    """A Spark UDF scoring rows with the model in ``run`` (a run folder or an ONNX export)."""
    with needs("spark", "the Spark engine"):
        from pyspark.ml.functions import predict_batch_udf
        from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    from fintune.data.columns import input_columns

    meta = RunMeta.read(model_folder(run))
    if task_of(meta.task).answer not in ("class", "value", "labels"):
        raise FintuneError(f"the Spark UDF returns labels and probabilities or values; this is a {meta.task} model: "
                           "use `fintune predict` or the Ray engine")
    if task_of(meta.task).answer == "value":
        fields = [StructField("prediction", DoubleType())]
    else:  # multi-label: the labels that hold, joined as the training file joined them
        decided = "predicted_labels" if task_of(meta.task).answer == "labels" else "predicted_label"
        fields = [StructField(decided, StringType())] + [
            StructField(f"prob_{name}", DoubleType()) for name in meta.label_names or []]
    cfg = meta.data
    columns = [c for c in (cfg.text_column, cfg.pair_column) if c is not None] + input_columns(cfg)
    path = str(run)

    def make_predict_fn() -> Any:
        from fintune.deploy.batch import BatchScorer

        scorer = BatchScorer(path, batch_size=batch_size, threads=threads)

        def predict(*arrays: np.ndarray) -> dict[str, np.ndarray]:
            frame = pd.DataFrame(dict(zip(columns, arrays)))
            out = scorer.columns(frame, "spark batch")
            return {f.name: np.asarray(out[f.name], dtype=object if f.name.startswith("predicted_label") else np.float64)
                    for f in fields}
        return predict

    udf = predict_batch_udf(make_predict_fn, return_type=StructType(fields), batch_size=batch_size)
    udf.columns = columns
    return udf
