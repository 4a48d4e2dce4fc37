"""The app in-process: table rows, the ONNX backend, and the micro-batcher on its own."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from fintune import api
from fintune.config import ServeConfig
from fintune.deploy.batcher import MicroBatcher
from fintune.deploy.server import build_app, create_app
from fintune.predictors import FintuneModel
from tests.conftest import credit_frame, sentiment_frame


def test_rows_of_a_table_model_equal_fintune_predict(credit_run: Path, tmp_path: Path) -> None:
    frame = credit_frame(20, seed=4).drop(columns="label")
    frame.to_csv(tmp_path / "in.csv", index=False)
    expected = pd.read_csv(api.predict(credit_run, tmp_path / "in.csv", tmp_path / "out.csv", show_progress=False))
    rows = [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in frame.to_dict("records")]
    app = create_app(FintuneModel.load(credit_run), ServeConfig(max_texts=32))
    with TestClient(app) as client:
        got = client.post("/v1/predict", json={"rows": rows}).json()["predictions"]
        assert [p["label"] for p in got] == expected["predicted_label"].tolist()
        np.testing.assert_allclose([p["probabilities"]["bad"] for p in got], expected["prob_bad"], atol=1e-5)
        texts = client.post("/v1/predict", json={"texts": ["income 5"]})
        assert texts.status_code == 422 and "send 'rows'" in texts.json()["error"]
        missing = client.post("/v1/predict", json={"rows": [{"income": 1}]})
        assert missing.status_code == 422 and "debt_ratio" in missing.json()["error"]
        wrong = client.post("/v1/predict", json={"rows": [{**rows[0], "income": "a lot"}]})
        assert wrong.status_code == 422 and "income" in wrong.json()["error"]
        explained = client.post("/v1/explain", json={"row": rows[0]}).json()
        assert explained["method"] == "occlusion" and len(explained["attributions"]) == 4


def test_onnx_backend_serves_the_same_answers(text_run: Path) -> None:
    exported = api.export(text_run, format="onnx", output=text_run / "onnx-fp32-serve")
    texts = sentiment_frame(12, seed=8)["text"].tolist()
    answers = []
    for folder in (text_run, exported):  # an export folder serves like a run
        with TestClient(build_app(folder, ServeConfig(log={"enabled": False}))) as client:
            answers.append(client.post("/v1/predict", json={"texts": texts}).json()["predictions"])
            if folder == exported:  # explanations come from the run's torch model, loaded on first use
                assert client.post("/v1/explain", json={"text": texts[0]}).json()["method"] == "integrated_gradients"
    assert [p["label"] for p in answers[0]] == [p["label"] for p in answers[1]]
    assert np.allclose([p["confidence"] for p in answers[0]], [p["confidence"] for p in answers[1]], atol=1e-4)


def test_serving_onnx_without_an_export_says_how_to_make_one(credit_run: Path, tmp_path: Path) -> None:
    from fintune.errors import FintuneError

    with pytest.raises(FintuneError, match="--format onnx"):
        build_app(tmp_path, ServeConfig(), onnx=True)


@pytest.mark.parametrize(("sizes", "max_batch", "wait_ms", "expected_batches"), [
    ([1] * 8, 32, 50, 1),       # eight at once, within the wait: one pass
    ([1] * 8, 4, 50, 2),        # the batch closes at four inputs
    ([5, 5, 5], 8, 50, 2),      # a request is never split: 5+5 closes the first batch
    ([1] * 3, 32, 0, 3),        # no waiting: each request alone (they arrive one by one)
])
def test_micro_batcher_groups_concurrent_jobs(sizes: list[int], max_batch: int, wait_ms: float,
                                              expected_batches: int) -> None:
    batches: list[list[int]] = []

    def score(jobs: list[int]) -> list[int]:
        batches.append(jobs)
        return [job * 10 for job in jobs]

    async def main() -> list[int]:
        batcher = MicroBatcher(score, max_batch, wait_ms)
        batcher.start()
        results = []
        if wait_ms == 0:
            for i, size in enumerate(sizes):
                results.append(await batcher.submit(i, size))
        else:
            results = await asyncio.gather(*(batcher.submit(i, size) for i, size in enumerate(sizes)))
        await batcher.stop()
        return list(results)

    assert asyncio.run(main()) == [i * 10 for i in range(len(sizes))]
    assert len(batches) == expected_batches


def test_batcher_errors_reach_the_requests_and_the_loop_goes_on() -> None:
    calls = []

    def score(jobs: list[int]) -> list[int]:
        calls.append(jobs)
        if len(calls) == 1:
            raise ValueError("broken batch")
        return jobs

    async def main() -> tuple[str, int]:
        batcher = MicroBatcher(score, 8, 0)
        batcher.start()
        try:
            await batcher.submit(1, 1)
        except ValueError as exc:
            first = str(exc)
        second = await batcher.submit(2, 1)
        await batcher.stop()
        return first, second

    assert asyncio.run(main()) == ("broken batch", 2)


def test_onnx_flag_prefers_the_int8_export(tmp_path: Path) -> None:
    from fintune.deploy.server import model_folder

    for name in ("onnx", "onnx-int8"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.onnx").write_bytes(b"")
    assert model_folder(tmp_path, onnx=True) == tmp_path / "onnx-int8"
    assert model_folder(tmp_path, onnx=False) == tmp_path
    (tmp_path / "onnx-int8" / "model.onnx").unlink()
    assert model_folder(tmp_path, onnx=True) == tmp_path / "onnx"


def test_serving_masks_personal_data_as_training_did(text_run: Path, tmp_path: Path) -> None:
    import json
    import shutil

    raw = "acme beats, Jane Smith says card 4111 1111 1111 1111 is fine"
    masked = "acme beats, Jane Smith says card <CARD> is fine"  # names stay (PERSON is off by default)
    with TestClient(build_app(text_run, ServeConfig(log={"enabled": False}))) as client:
        got = [client.post("/v1/predict", json={"texts": [t]}).json()["predictions"][0] for t in (raw, masked)]
    assert got[0]["probabilities"] == got[1]["probabilities"]
    # A run from before masking existed (no data.privacy in fintune.json) keeps its raw input.
    old = tmp_path / "old_run"
    shutil.copytree(text_run / "model", old)
    meta = json.loads((old / "fintune.json").read_text())
    meta["data"].pop("privacy")
    (old / "fintune.json").write_text(json.dumps(meta))
    model = FintuneModel.load(old)
    assert model.examples_of(pd.DataFrame({"text": [raw]}), "x").texts == [raw]
