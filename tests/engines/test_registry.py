"""The engines registry: every registered engine has a row saying what it runs, and asking an
engine for work it does not run names the ones that do. An engine without a row fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from fintune.engines import ENGINES, PredictRequest, TrainRequest, engine_for, engine_names
from fintune.errors import FintuneError

# Each engine: what it runs from the command line (a second spelling on purpose).
ROWS = {
    "local": {"train", "pretrain", "predict"},
    "torchrun": {"train", "pretrain"},
    "ray": {"train", "predict"},
    "spark": set(),
}


def test_every_engine_has_a_row() -> None:
    assert set(ROWS) == set(ENGINES), "add a row to ROWS for each registered engine"


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_an_engine_runs_exactly_its_declared_work(name: str) -> None:
    cls = ENGINES[name]
    assert set(cls.works) == ROWS[name] and cls.summary
    for work in ("train", "pretrain", "predict"):
        if work in ROWS[name]:
            assert engine_for(name, work).name == name
            continue
        with pytest.raises(FintuneError, match=f"--engine {name} does not {work}") as caught:
            engine_for(name, work)
        assert " or ".join(engine_names(work)) in str(caught.value)  # it names the engines that do


def test_an_unknown_engine_names_the_known_ones() -> None:
    with pytest.raises(FintuneError, match="--engine dask: unknown; predict runs on local or ray"):
        engine_for("dask", "predict")


def test_spark_says_where_it_runs() -> None:
    with pytest.raises(FintuneError, match="predict_udf"):
        engine_for("spark", "predict")


def test_a_launcher_gets_the_same_command_back() -> None:
    request = TrainRequest("train", Path("cfg.yaml"), ["train.lr=1e-4"], resume=True, force=True,
                           show_progress=False, nproc=2)
    assert request.argv() == ["train", "cfg.yaml", "train.lr=1e-4", "--resume", "--force", "--no-progress"]


def test_the_local_engine_trains_and_predicts(tmp_path: Path, make_config) -> None:
    import pandas as pd

    config = make_config(train={"epochs": 1})
    code = engine_for("local", "train").train(TrainRequest("train", config, [], show_progress=False))
    run = tmp_path / "runs" / "run"
    assert code == 0 and (run / "model" / "fintune.json").exists()
    source, out = tmp_path / "in.csv", tmp_path / "out.csv"
    pd.DataFrame({"text": ["profits rose", "shares fell"]}).to_csv(source, index=False)
    engine_for("local", "predict").predict(PredictRequest(run, source, out, show_progress=False))
    assert pd.read_csv(out)["predicted_label"].notna().tolist() == [True, True]
