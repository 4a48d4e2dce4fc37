"""Drift statistics, and the monitor's verdict on logged traffic like and unlike training."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from fintune.cli import app as cli
from fintune.config import MonitorConfig, ServeConfig
from fintune.deploy.monitor import domain_auc, mmd_test, monitor, psi, psi_categorical
from fintune.deploy.predlog import read_log, sketch
from fintune.deploy.server import create_app
from fintune.predictors import FintuneModel
from tests.conftest import sentiment_frame


def test_psi_is_zero_for_the_same_sample_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 5000), rng.normal(0, 1, 5000)
    assert psi(a, a) == pytest.approx(0, abs=1e-9) and psi(a, b) < 0.02
    assert psi(a, rng.normal(1, 1, 5000)) > 0.25
    labels = np.array(["up", "down"] * 500)
    assert psi_categorical(labels, labels) == pytest.approx(0, abs=1e-9)
    assert psi_categorical(labels, np.array(["up"] * 900 + ["down"] * 100)) > 0.25


def test_embedding_drift_statistics() -> None:
    rng = np.random.default_rng(1)
    a, b, shifted = rng.normal(size=(300, 8)), rng.normal(size=(300, 8)), rng.normal(0.8, 1, size=(300, 8))
    assert abs(domain_auc(a, b) - 0.5) < 0.1 and domain_auc(a, shifted) > 0.9  # theory: 0.94
    assert mmd_test(a, b)[1] > 0.05 and mmd_test(a, shifted)[1] < 0.01


def test_sketch_is_a_fixed_projection_that_keeps_distances() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 384))
    s = sketch(x)
    assert s.shape == (50, 32) and np.array_equal(s, sketch(x))
    full = np.linalg.norm(x[:25] - x[25:], axis=1)
    ratio = np.linalg.norm(s[:25] - s[25:], axis=1) / full
    assert 0.5 < np.median(ratio) < 1.5


def _log_traffic(run: Path, log: Path, texts: list[str]) -> None:
    app = create_app(FintuneModel.load(run), ServeConfig(max_texts=64), log_path=log, model_path=run / "model")
    with TestClient(app) as client:
        for start in range(0, len(texts), 32):
            assert client.post("/v1/predict", json={"texts": texts[start:start + 32]}).status_code == 200


def _off_topic(n: int) -> list[str]:
    rng = random.Random(0)
    words = ["credit", "amount", "purpose", "car", "tv", "age", "url", "ticker", "missing"]
    return [" ".join(rng.choices(words, k=rng.randint(15, 25))) for _ in range(n)]


@pytest.mark.parametrize(("texts", "expected"), [
    (sentiment_frame(240, seed=9)["text"].tolist(), {"ok", "warn"}),
    (_off_topic(240), {"alert"}),
])
def test_monitor_verdict(text_run: Path, tmp_path: Path, texts: list[str], expected: set[str]) -> None:
    log = tmp_path / "log.sqlite"
    _log_traffic(text_run, log, texts)
    assert len(read_log(log)[0]) == len(texts)
    verdict = monitor(text_run, log, MonitorConfig(), output=tmp_path / "monitor")
    assert verdict["status"] in expected
    checks = {c["name"]: c for c in verdict["checks"]}
    assert set(checks) == {"prediction_psi", "confidence_psi", "length_psi", "embedding_auc", "embedding_mmd"}
    if expected == {"alert"}:
        assert checks["length_psi"]["status"] == "alert" and checks["embedding_auc"]["value"] > 0.8
    else:
        assert checks["embedding_auc"]["value"] < 0.8
    assert (tmp_path / "monitor" / "drift.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "monitor" / "drift.json").read_text())["status"] == verdict["status"]


def test_cli_exits_1_on_alert_and_0_on_too_little_traffic(text_run: Path, tmp_path: Path) -> None:
    log = tmp_path / "log.sqlite"
    _log_traffic(text_run, log, _off_topic(120))
    runner = CliRunner()
    result = runner.invoke(cli, ["monitor", str(text_run), "--log", str(log), "--output", str(tmp_path / "m")])
    assert result.exit_code == 1 and "alert" in result.output
    result = runner.invoke(cli, ["monitor", str(text_run), "--log", str(log), "--output", str(tmp_path / "m"),
                                 "-s", "monitor.min_rows=500"])
    assert result.exit_code == 0 and "insufficient" in result.output
    missing = runner.invoke(cli, ["monitor", str(text_run), "--log", str(tmp_path / "none.sqlite")])
    assert missing.exit_code == 2 and "prediction log not found" in missing.output
