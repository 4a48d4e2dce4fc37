"""A folder of scans through data check, train and predict, as a user would run them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from fintune import api
from tests.data.ingest.conftest import render

pytest.importorskip("rapidocr_onnxruntime")

GOOD = ["Record profit and higher dividend", "Strong growth in revenue", "Upgrade on record sales",
        "Profit beats estimates", "Shares rally on strong growth", "Dividend raised after record year"]
BAD = ["Heavy losses and a profit warning", "Revenue falls on weak demand", "Downgrade after default",
       "Losses widen as sales fall", "Shares plunge on profit warning", "Default risk rises after weak year"]


def test_scans_are_checked_trained_on_and_predicted(tmp_path: Path) -> None:
    for label, texts in [("positive", GOOD), ("negative", BAD)]:
        (tmp_path / "scans" / label).mkdir(parents=True)
        for i, text in enumerate(texts):
            render(text, tmp_path / "scans" / label / f"{i}.png")
    (tmp_path / "scans" / "negative" / "torn.png").write_bytes(b"not an image")
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({
        "output_dir": str(tmp_path / "run"), "seed": 3, "model": {"kind": "bow"},
        "data": {"train": str(tmp_path / "scans"), "text_column": "text", "files": {"min_confidence": 0.999},
                 "split": {"validation_size": 0.25, "test_size": 0.0}}}))
    with pytest.warns(UserWarning, match="1 of 13 files could not be read.*torn.png"):
        report = api.data_check(config)
    files = report["files"]["train"]
    assert files["files"] == 13 and files["read"] == 12 and files["by_kind"] == {"image": 12}
    assert files["errors"] == [{"file": str(tmp_path / "scans" / "negative" / "torn.png"),
                                "error": files["errors"][0]["error"]}]
    assert 0.9 < files["mean_confidence"] <= 1 and files["lowest"][0]["confidence"] < 0.999
    with pytest.warns(UserWarning, match="torn.png"):
        run = api.train(config, show_progress=False).run_dir
    assert json.loads((run / "metrics.json").read_text())["training"]["train_rows"] == 9
    # Predict reads a folder of new scans the same way; each row keeps its file and confidence.
    (tmp_path / "new").mkdir()
    render("Record revenue growth", tmp_path / "new" / "a.png")
    render("Profit warning and losses", tmp_path / "new" / "b.png")
    out = api.predict(run, tmp_path / "new", tmp_path / "predictions.csv", show_progress=False)
    table = pd.read_csv(out)
    assert list(table["file"].map(lambda f: Path(f).name)) == ["a.png", "b.png"]
    assert list(table["predicted_label"]) == ["positive", "negative"]
    assert table["file_confidence"].between(0.9, 1).all()
    # The Python API takes a DataFrame of paths too; every row given gets its prediction, so an
    # unreadable file is an error that names it.
    from fintune.errors import DataError
    from fintune.predictors import FintuneModel

    model = FintuneModel.load(run)
    frame = pd.DataFrame({"file": [str(tmp_path / "new" / "b.png"), str(tmp_path / "new" / "a.png")]})
    assert list(model.predict(frame)) == ["negative", "positive"]
    with pytest.raises(DataError, match="torn.png"):
        model.predict(pd.DataFrame({"file": [str(tmp_path / "scans" / "negative" / "torn.png")]}))
    # Served, the run takes uploads; a path in a request's rows is refused, never opened.
    from fastapi.testclient import TestClient

    from fintune.config import ServeConfig
    from fintune.deploy.server import create_app

    with TestClient(create_app(model, ServeConfig())) as client:
        refused = client.post("/v1/predict", json={"rows": [{"file": "/etc/passwd"}]})
        assert refused.status_code == 422 and "/v1/predict/files" in refused.json()["error"]
        uploaded = client.post("/v1/predict/files",
                               files=[("files", ("b.png", (tmp_path / "new" / "b.png").read_bytes()))]).json()
        assert uploaded["files"][0]["prediction"]["label"] == "negative"
