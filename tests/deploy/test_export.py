"""ONNX export: dynamic axes, agreement with torch, int8, and the metric-drop bound."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fintune import api
from fintune.config import ExportConfig
from fintune.deploy import export as export_module
from fintune.deploy.export import ExportCheck, check_export
from fintune.errors import FintuneError
from fintune.predictors import FintuneModel
from fintune.models.onnx import OnnxModel
from tests.conftest import sentiment_frame


@pytest.fixture(scope="module")
def onnx_fp32(text_run: Path) -> Path:
    return api.export(text_run, format="onnx")


def test_onnx_export_matches_torch_on_any_batch_and_length(text_run: Path, onnx_fp32: Path) -> None:
    report = json.loads((onnx_fp32 / "export.json").read_text())
    assert report["agreement"] == 1.0 and report["max_abs_diff"] < 1e-4 and report["passed"]
    exported, torch_model = FintuneModel.load(onnx_fp32), FintuneModel.load(text_run)
    assert isinstance(exported.model, OnnxModel)
    texts = sentiment_frame(37, seed=11)["text"].tolist()
    texts[3] = " ".join([texts[3]] * 6)  # longer than anything traced
    for batch_size in (1, 5, 37):  # dynamic batch axis; length-sorted batches vary the sequence axis
        np.testing.assert_allclose(exported.outputs(texts, batch_size), torch_model.outputs(texts, batch_size),
                                   atol=1e-5)
    out, vectors = exported.scores(texts, with_vectors=True)
    _, torch_vectors = torch_model.scores(texts, with_vectors=True)
    assert vectors.shape == (37, 64)
    np.testing.assert_allclose(vectors, torch_vectors, atol=1e-4)


def test_int8_export_is_checked_and_smaller(text_run: Path, onnx_fp32: Path) -> None:
    out = api.export(text_run, format="onnx", quantize="int8", overrides=["export.max_metric_drop=100"])
    report = json.loads((out / "export.json").read_text())
    assert out.name == "onnx-int8" and report["quantize"] == "int8"
    assert report["size_mb"] < json.loads((onnx_fp32 / "export.json").read_text())["size_mb"]
    assert 0.0 <= report["agreement"] <= 1.0 and report["rows"] > 0


def test_check_sees_a_worse_model(text_run: Path, tiny_bert: Path, tmp_path: Path, make_config) -> None:
    worse_run = api.train(make_config("worse.yaml", train={"max_steps": 1, "lr": 1e-5}), show_progress=False)
    reference = FintuneModel.load(text_run)
    examples = api.load_split(text_run, "validation", reference)[0]
    check = check_export(reference, FintuneModel.load(worse_run.run_dir), examples, bound_points=0.5)
    assert not check.passed and check.drop_points > 0.5 and check.agreement < 1.0


def _failing(*args, **kwargs) -> ExportCheck:
    return ExportCheck(rows=10, metric="weighted_f1", torch_value=0.9, exported_value=0.8, drop_points=10.0,
                       agreement=0.9, max_abs_diff=0.3, bound_points=0.5, passed=False)


def test_export_refuses_past_the_bound_unless_forced(text_run: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(export_module, "check_export", _failing)
    out = tmp_path / "refused"
    with pytest.raises(FintuneError, match=r"loses 10.00 points of weighted_f1.*--force"):
        export_module.export_onnx(text_run, out, ExportConfig())
    assert not out.exists() and not out.with_name("refused.partial").exists()
    export_module.export_onnx(text_run, out, ExportConfig(), force=True)
    assert json.loads((out / "export.json").read_text())["forced"] is True


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"format": "tflite"}, "unknown export format"),
    ({"format": "onnx", "quantize": "int4"}, "unknown quantization"),
    ({"format": "hf", "quantize": "int8"}, "applies to --format onnx"),
    ({"format": "onnx", "merge": False}, "drop --no-merge"),
])
def test_export_options_are_checked(text_run: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(FintuneError, match=message):
        api.export(text_run, **kwargs)


def test_feature_model_exports_with_a_features_input(credit_run: Path) -> None:
    out = api.export(credit_run, format="onnx")
    model = FintuneModel.load(out)
    assert model.model.input_names == ["features"]
    assert json.loads((out / "export.json").read_text())["agreement"] == 1.0


def test_export_never_touches_a_users_partial_folder(text_run: Path, tmp_path: Path) -> None:
    """The temporary folder is the process's own (.NAME.partial-PID-HEX), never NAME.partial."""
    users = tmp_path / "deploy.partial"
    users.mkdir()
    (users / "notes.txt").write_text("mine")
    api.export(text_run, format="onnx", output=tmp_path / "deploy")
    assert (users / "notes.txt").read_text() == "mine"
    assert (tmp_path / "deploy" / "model.onnx").exists()
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]
