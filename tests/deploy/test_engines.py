"""Batch engines: Ray Data actors and a Spark UDF give `fintune predict`'s rows exactly."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fintune import api
from tests.conftest import sentiment_frame

ROWS = 300


@pytest.fixture(scope="module")
def scored(text_run: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """An input file with an id column and what the single-process `fintune predict` writes for it."""
    tmp = tmp_path_factory.mktemp("engines")
    frame = sentiment_frame(ROWS, seed=21).drop(columns="label").assign(id=np.arange(ROWS) * 7)
    frame.to_parquet(tmp / "input.parquet", index=False)
    api.predict(text_run, tmp / "input.parquet", tmp / "local.csv", show_progress=False)
    return tmp, pd.read_csv(tmp / "local.csv")


def _same(local: pd.DataFrame, other: pd.DataFrame) -> None:
    assert list(other["id"]) == list(local["id"])  # row order kept
    assert list(other["predicted_label"]) == list(local["predicted_label"])
    probs = [c for c in local.columns if c.startswith("prob_")]
    np.testing.assert_allclose(other[probs].to_numpy(float), local[probs].to_numpy(float), atol=1e-5)


def test_ray_data_equals_fintune_predict(text_run: Path, scored: tuple[Path, pd.DataFrame]) -> None:
    ray = pytest.importorskip("ray")
    from fintune.engines.ray import predict_file

    tmp, local = scored
    # A local Ray of 2 CPUs: two actors of half a CPU each, and room for the read and write tasks.
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        # Blocks of 64 rows: the one file is cut into 5 blocks, shared by the two actors.
        predict_file(text_run, tmp / "input.parquet", tmp / "ray.parquet", workers=2, batch_size=32,
                     cpus_per_worker=0.5, rows_per_block=64)
    finally:
        ray.shutdown()
    parts = sorted((tmp / "ray.parquet").glob("*.parquet"))
    # One part per block, named in input order (part-000000, ...), whatever the actors' timing.
    assert [p.name for p in parts] == [f"part-{i:06d}.parquet" for i in range(len(parts))] and len(parts) > 1
    _same(local, pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True))


def _ray_refuses(text_run: Path, source: Path, error: type, match: str) -> None:
    """``predict_file`` on ``source`` raises ``error`` (fintune's one line, no Ray exception
    type) and leaves no output and no partial folder beside it."""
    ray = pytest.importorskip("ray")
    from fintune.engines.ray import predict_file

    out = source.with_name("out.parquet")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with pytest.raises(error, match=match):
            predict_file(text_run, source, out, workers=1, cpus_per_worker=0.5)
    finally:
        ray.shutdown()
    assert not [p.name for p in source.parent.iterdir() if ".partial" in p.name] and not out.exists()


def test_ray_errors_are_one_line_and_leave_nothing(text_run: Path, tmp_path: Path) -> None:
    """A truncated Parquet: the local engine's one-line error."""
    from fintune.errors import DataError

    pd.DataFrame({"text": ["acme beats"] * 200}).to_parquet(tmp_path / "whole.parquet")
    data = (tmp_path / "whole.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    _ray_refuses(text_run, tmp_path / "cut.parquet", DataError, "cut.parquet")


def test_an_actors_error_comes_back_as_fintunes_one_line(text_run: Path, tmp_path: Path) -> None:
    """An integer text column fails inside a Ray actor; Ray re-raises it as UserCodeException
    with a text traceback, and the driver shows fintune's own line."""
    from fintune.errors import FintuneError

    pd.DataFrame({"text": list(range(50))}).to_parquet(tmp_path / "ints.parquet")
    _ray_refuses(text_run, tmp_path / "ints.parquet", FintuneError, "text")


def test_ray_refuses_an_output_folder_that_holds_files(text_run: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    from fintune.errors import FintuneError
    from fintune.engines.ray import predict_file

    (tmp_path / "out.parquet").mkdir()
    (tmp_path / "out.parquet" / "part-0.parquet").write_bytes(b"earlier run")
    # Refused before Ray starts: new parts beside the old ones would mix two runs' rows.
    with pytest.raises(FintuneError, match="exists and is not an empty folder"):
        predict_file(text_run, tmp_path / "in.parquet", tmp_path / "out.parquet")
    assert [p.name for p in (tmp_path / "out.parquet").iterdir()] == ["part-0.parquet"]


def test_spark_udf_equals_fintune_predict(text_run: Path, scored: tuple[Path, pd.DataFrame],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("Spark's local mode needs a Java runtime (17+)")
    from pyspark.sql import SparkSession

    from fintune.engines.spark import predict_udf

    tmp, local = scored
    # The Python workers must be this interpreter (the one fintune is installed in).
    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)
    spark = (SparkSession.builder.master("local[2]").appName("fintune-test")
             .config("spark.pyspark.python", sys.executable).config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2").getOrCreate())
    try:
        df = spark.read.parquet(str(tmp / "input.parquet"))
        udf = predict_udf(text_run, batch_size=64)
        assert udf.columns == ["text"]
        out = df.withColumn("fintune", udf(*udf.columns)).select("id", "fintune.*").toPandas()
    finally:
        spark.stop()
    _same(local, out.sort_values("id").reset_index(drop=True))


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_ray_parts_are_written_as_fintune_predict_writes_the_format(suffix: str, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    import json

    import pyarrow as pa

    from fintune.engines.ray import WRITERS

    # A tagger's entity lists: pyarrow's own CSV writer cannot write them; fintune predict writes JSON text.
    table = pa.table({"id": [3, 1], "entities": [[{"label": "ORG", "start": 0, "end": 4}], []]})
    path = tmp_path / f"part-000000{suffix}"
    WRITERS[suffix](table, path)
    read = {".parquet": pd.read_parquet, ".csv": pd.read_csv,
            ".jsonl": lambda p: pd.read_json(p, lines=True)}[suffix](path)
    assert list(read["id"]) == [3, 1]
    first = read["entities"].iloc[0]
    entities = json.loads(first) if isinstance(first, str) else list(first)
    assert [dict(e) for e in entities] == [{"label": "ORG", "start": 0, "end": 4}]
