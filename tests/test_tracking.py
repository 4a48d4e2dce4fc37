"""Experiment tracking: a finished run logged to MLflow (a temporary SQLite store) and
TensorBoard, and `fintune runs` comparing run folders."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from fintune import api
from fintune.cli import app
from fintune.tracking import flat, list_runs, select_runs


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, tiny_bert: Path) -> tuple[Path, Path, str]:
    """Under one runs folder: a run tracked to MLflow and TensorBoard (2 epochs, lr 3e-3) and an
    untracked one (1 epoch, lr 1e-4); and the tracked run's store."""
    from tests.conftest import sentiment_frame, write_config

    folder = tmp_path_factory.mktemp("tracking")
    sentiment_frame(240).to_csv(folder / "train.csv", index=False)
    uri = f"sqlite:///{folder / 'store' / 'mlflow.db'}"
    (folder / "store").mkdir()
    tracked = write_config(folder / "fast.yaml", tiny_bert, folder / "train.csv", folder / "runs" / "fast",
                           train={"epochs": 2},
                           track={"mlflow": True, "tracking_uri": uri, "experiment": "tfns", "tensorboard": True,
                                  "register": "tfns-sentiment"})
    plain = write_config(folder / "slow.yaml", tiny_bert, folder / "train.csv", folder / "runs" / "slow",
                         train={"epochs": 1, "lr": 1e-4})
    return api.train(tracked, show_progress=False).run_dir, api.train(plain, show_progress=False).run_dir, uri


def test_a_tracked_run_logs_params_curves_final_metrics_and_artifacts(two_runs) -> None:
    import mlflow

    from fintune.rundir import read_metrics

    run_dir, _, uri = two_runs
    run = api.RunResult(run_dir, read_metrics(run_dir))
    logged = json.loads((run.run_dir / "tracking.json").read_text())
    client = mlflow.MlflowClient(tracking_uri=uri)
    record = client.get_run(logged["mlflow"]["run_id"])
    assert record.info.status == "FINISHED" and record.info.run_name == run.run_dir.name
    assert client.get_experiment(record.info.experiment_id).name == "tfns"
    assert record.data.params["train.lr"] == str(3e-3) and record.data.params["model.max_length"] == "32"
    assert record.data.tags["task"] == "classification" and record.data.tags["fintune.run_dir"] == str(run.run_dir)
    curve = client.get_metric_history(record.info.run_id, "validation.accuracy")
    assert len(curve) == 2 and curve[0].step < curve[1].step  # one point per evaluation
    assert record.data.metrics["final.test.accuracy"] == pytest.approx(run.metrics["test"]["accuracy"])
    artifacts = {a.path for a in client.list_artifacts(record.info.run_id)}
    assert {"config.yaml", "metrics.json", "eval", "card", "model"} <= artifacts
    model_files = {Path(a.path).name for a in client.list_artifacts(record.info.run_id, "model")}
    assert {"config.json", "model.safetensors", "fintune.json"} <= model_files
    assert any((run.run_dir / "tensorboard").iterdir())


def test_the_logged_model_is_an_mlflow_model_in_the_registry_predicting_as_fintune_does(two_runs) -> None:
    import mlflow

    from fintune.predictors import FintuneModel

    run_dir, _, uri = two_runs
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert [m.name for m in client.search_registered_models()] == ["tfns-sentiment"]
    version = client.get_model_version("tfns-sentiment", "1")
    client.set_registered_model_alias("tfns-sentiment", "champion", version.version)  # how a bank promotes
    logged = json.loads((run_dir / "tracking.json").read_text())["mlflow"]
    assert version.run_id == logged["run_id"] and logged["registered_model"] == "tfns-sentiment"
    points = client.get_metric_history(logged["run_id"], "validation.accuracy")
    assert all(p.timestamp > 1_600_000_000_000 for p in points)  # real times, not 0
    frame = pd.DataFrame({"text": ["acme beats the guidance", "globex misses badly", "hooli holds"]})
    mlflow.set_tracking_uri(uri)
    try:
        pyfunc = mlflow.pyfunc.load_model("models:/tfns-sentiment@champion")
    finally:
        mlflow.set_tracking_uri("")
    assert pyfunc.metadata.get_input_schema().input_names() == ["text"]
    got = pyfunc.predict(frame)
    model = FintuneModel.load(run_dir)
    assert got["predicted_label"].tolist() == model.predict(frame).tolist()
    probs = model.predict_proba(frame)
    for label in model.label_names:
        assert got[f"prob_{label}"].to_numpy() == pytest.approx(probs[label].to_numpy(), abs=1e-6)


def test_track_logs_a_run_after_the_fact_and_says_which_extra_it_needs(two_runs, monkeypatch) -> None:
    import mlflow

    run_dir = two_runs[1]
    assert not (run_dir / "tracking.json").exists()
    out = CliRunner().invoke(app, ["track", str(run_dir), "--experiment", "later"])
    assert out.exit_code == 0, out.output
    store = run_dir.parent / "mlflow.db"  # the default: SQLite beside the runs
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{store}")
    assert client.get_experiment_by_name("later") is not None
    monkeypatch.setitem(sys.modules, "mlflow", None)
    out = CliRunner().invoke(app, ["track", str(run_dir)])
    assert out.exit_code == 2 and "pip install 'fintune[tracking]'" in out.output


def test_fintune_runs_lists_sorts_and_filters(two_runs, tmp_path: Path) -> None:
    root = two_runs[0].parent
    rows = list_runs(root)  # MLflow's artifact copies under runs/mlartifacts are not runs
    assert {r["run"] for r in rows} == {"slow", "fast"} and all(r["state"] == "finished" for r in rows)
    best = select_runs(rows, [], "-validation.accuracy")
    assert best[0]["validation.accuracy"] >= best[1]["validation.accuracy"]
    assert [r["run"] for r in select_runs(rows, ["train.lr=0.003"], None)] == ["fast"]
    out = CliRunner().invoke(app, ["runs", str(root), "--sort", "-validation.accuracy", "--output",
                                   str(tmp_path / "runs.csv")])
    assert out.exit_code == 0, out.output
    # Piped (as here): tab-separated on stdout, every name whole, the learning rates as written.
    header, *lines = out.stdout.strip().splitlines()
    assert header.split("\t")[:2] == ["run", "state"] and "validation.accuracy" in header.split("\t")
    cells = dict(zip(header.split("\t"), lines[0].split("\t")))
    assert cells["train.lr"] in ("0.003", "0.0001") and len(lines) == 2
    table = pd.read_csv(tmp_path / "runs.csv")
    assert list(table["run"]) == [r["run"] for r in best] and "train.lr" in table.columns
    out = CliRunner().invoke(app, ["runs", str(root), "--filter", "oops"])
    assert out.exit_code == 2 and "key=value" in out.output


def test_flat_params() -> None:
    assert flat({"train": {"lr": 1e-4, "early_stopping": {"patience": 2}}, "data": {"feature_columns": ["a", "b"]}}) == {
        "train.lr": 1e-4, "train.early_stopping.patience": 2, "data.feature_columns": '["a", "b"]'}


@pytest.mark.parametrize("uri", ["file:///proc/fintune-cannot-write-here", "http://127.0.0.1:9"])
def test_a_failing_store_warns_and_keeps_the_model(two_runs, uri: str, tmp_path: Path) -> None:
    """An unwritable store or a dead server: `train --track` says the model is saved and exits 0
    within bounded time; `fintune track` says why in one line (exit 2)."""
    import time

    import yaml

    config = yaml.safe_load((two_runs[1] / "config.yaml").read_text())
    config.update(output_dir=str(tmp_path / "run"), track={"mlflow": True, "tracking_uri": uri})
    config["train"]["epochs"] = 1
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    started = time.monotonic()
    out = CliRunner().invoke(app, ["train", str(tmp_path / "c.yaml"), "--no-progress"])
    assert out.exit_code == 0, out.output
    text = " ".join(out.output.split())
    assert "the model is saved in" in text and "tracking failed" in text and "fintune track" in text
    assert (tmp_path / "run" / "model" / "fintune.json").exists()
    out = CliRunner().invoke(app, ["track", str(tmp_path / "run"), "--uri", uri])
    assert out.exit_code == 2 and "Traceback" not in out.output and "did not take the run" in out.output
    assert time.monotonic() - started < 120


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_the_mlflow_ui_shows_the_fintune_run_and_its_registered_model(two_runs, tmp_path: Path) -> None:
    import mlflow
    from playwright.sync_api import sync_playwright

    from tests.conftest import assert_rendered

    run_dir, _, uri = two_runs
    experiment = mlflow.MlflowClient(tracking_uri=uri).get_experiment_by_name("tfns").experiment_id
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The UI as the docs tell a user to start it (the tracking extra brings MLflow's server).
    server = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "ui", "--backend-store-uri", uri,
                               "--host", "127.0.0.1", "--port", str(port)], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(f"http://127.0.0.1:{port}/health", 90)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/#/experiments/{experiment}/runs")
            page.get_by_text(run_dir.name, exact=True).first.wait_for(timeout=60_000)
            page.screenshot(path=str(tmp_path / "mlflow.png"), full_page=True)
            page.goto(f"http://127.0.0.1:{port}/#/models")
            page.get_by_text("tfns-sentiment").first.wait_for(timeout=60_000)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert_rendered(tmp_path / "mlflow.png")


def _wait_for(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {seconds} s")
