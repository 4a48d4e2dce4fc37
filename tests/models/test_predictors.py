"""Every registered predictor: train a tiny model of its kind, save, load through
FintuneModel.load, and predict the same; read the run folders of format 1 the same way.

A registered predictor without a case in tests/models/predictor_cases.py fails the first test.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fintune import api
from fintune.config import PII_TYPES
from fintune.errors import FintuneError
from fintune.models.metadata import FORMAT, RunMeta
from fintune.predictors import PREDICTORS, FintuneModel
from tests.models.predictor_cases import CASES, probe_inputs

LEGACY = Path(__file__).parent / "legacy"
BUILDERS = [(name, builder) for name, builders in CASES.items() for builder in builders]


def test_every_registered_predictor_has_a_case() -> None:
    assert set(CASES) == set(PREDICTORS)


def _predictions(model: FintuneModel, name: str, tmp: Path) -> dict:
    frame = probe_inputs(name, tmp)
    rows = model.rows_for_prediction(frame, "probe")
    return model.predict_columns(rows, 0, len(frame), frame, batch_size=8)


def _same(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for column in a:
        left, right = a[column], b[column]
        if isinstance(left, np.ndarray) and left.dtype.kind == "f":
            np.testing.assert_allclose(left, right, atol=1e-5)
        else:
            assert list(left) == list(right), column


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_bert, tiny_llama) -> dict[str, Path]:
    """One run per case, trained once for the module."""
    runs = {}
    for name, builder in BUILDERS:
        tmp = tmp_path_factory.mktemp(builder.__name__)
        runs[builder.__name__] = api.train(builder(tmp, tiny_bert, tiny_llama), show_progress=False).run_dir
    return runs


@pytest.mark.parametrize(("name", "builder"), BUILDERS, ids=[b.__name__ for _, b in BUILDERS])
def test_predictor_saves_loads_and_predicts_the_same(name, builder, trained, tmp_path) -> None:
    run = trained[builder.__name__]
    model = FintuneModel.load(run)
    assert type(model) is PREDICTORS[name] and model.meta.predictor == name
    meta = json.loads((run / "model" / "fintune.json").read_text())
    assert meta["format"] == FORMAT and meta["predictor"] == name
    before = _predictions(model, name, tmp_path)
    assert len(next(iter(before.values()))) == len(probe_inputs(name, tmp_path))
    # Saved again and loaded through the base class: the same class and the same predictions.
    model.save(tmp_path / "again")
    again = FintuneModel.load(tmp_path / "again")
    assert type(again) is type(model) and again.meta == model.meta
    _same(_predictions(again, name, tmp_path), before)
    # Built from parts, the base class dispatches on the metadata as load does.
    rebuilt = FintuneModel(model.model, model.tokenizer, model.meta.model_dump(), features=model.features)
    assert type(rebuilt) is type(model)


# Kinds added after format 1 have no format-1 folders to load.
LEGACY_BUILDERS = [(n, b) for n, b in BUILDERS if (LEGACY / f"{b.__name__}.json").exists()]


@pytest.mark.parametrize(("name", "builder"), LEGACY_BUILDERS, ids=[b.__name__ for _, b in LEGACY_BUILDERS])
def test_a_run_folder_of_format_1_loads_and_predicts_the_same(name, builder, trained, tmp_path, tiny_bert,
                                                              tiny_llama) -> None:
    run = trained[builder.__name__]
    current = FintuneModel.load(run)
    # The fintune.json that fintune wrote for this config before the typed metadata (format 1),
    # beside this version's weights (their files did not change).
    old = tmp_path / "old"
    shutil.copytree(run / "model", old)
    train_dir = Path(current.data_config.train).parent
    legacy = (LEGACY / f"{builder.__name__}.json").read_text()
    legacy = legacy.replace("{BERT}", str(tiny_bert)).replace("{LLAMA}", str(tiny_llama)).replace("{TMP}", str(train_dir))
    assert "format" not in json.loads(legacy) and "predictor" not in json.loads(legacy)
    (old / "fintune.json").write_text(legacy)
    loaded = FintuneModel.load(old)
    assert type(loaded) is type(current)
    # Calibration and threshold were fitted on this run's own outputs: take them from it. The
    # masking types are the old run's own (then every type was on by default) and stay so.
    # (types added since, such as the Chinese ones, are not switched on for an old run).
    assert loaded.data_config.privacy.types == json.loads(legacy)["data"]["privacy"]["types"]
    assert set(loaded.data_config.privacy.types) < set(PII_TYPES)
    data = current.meta.data.model_copy(update={"privacy": loaded.meta.data.privacy})
    fitted = {"temperature": current.meta.temperature, "threshold": current.meta.threshold}
    assert loaded.meta.updated(**fitted) == current.meta.updated(data=data)
    loaded.meta = loaded.meta.updated(**fitted)
    _same(_predictions(loaded, name, tmp_path), _predictions(current, name, tmp_path))


def test_format_1_keeps_a_distilled_student_as_it_predicted() -> None:
    raw = json.loads((LEGACY / "text.json").read_text())
    raw.update(distilled_from="runs/teacher", temperature=2.0, alpha=0.5)
    meta = RunMeta.parse(raw)
    assert meta.distilled is not None and (meta.distilled.teacher, meta.distilled.alpha) == ("runs/teacher", 0.5)
    assert meta.temperature == 2.0  # what that student applied to its outputs


def test_unknown_metadata_keys_are_refused(tmp_path) -> None:
    raw = json.loads((LEGACY / "text.json").read_text())
    meta = RunMeta.parse(raw).model_dump(mode="json")
    meta["thresold"] = 0.3
    (tmp_path / "fintune.json").write_text(json.dumps(meta))
    with pytest.raises(FintuneError, match="not valid fintune metadata .thresold: Extra inputs"):
        RunMeta.read(tmp_path)


CAPABILITIES = {
    # name: (servable, onnx export, explanation, has scores, chats)
    "text": (True, True, "integrated_gradients", True, False),
    "fusion": (True, True, "occlusion", True, False),
    "mlp": (True, True, "occlusion", True, False),
    "gbm": (True, False, "occlusion", True, False),
    "linear": (True, False, "occlusion", True, False),
    "probe": (True, False, None, True, False),
    "long_text": (True, False, "windows", True, False),
    "ensemble": (True, False, "occlusion", True, False),
    "causal": (True, False, None, True, False),
    "causal_head": (True, True, "integrated_gradients", True, False),
    "generation": (False, False, None, False, True),
    "tagger": (False, False, None, False, False),
    "bow": (True, False, None, True, False),
}


def test_every_registered_predictor_declares_its_capabilities() -> None:
    assert set(CAPABILITIES) == set(PREDICTORS)
    for name, (servable, onnx, explanation, scores, chats) in CAPABILITIES.items():
        cls = PREDICTORS[name]
        assert (cls.servable is None, cls.onnx_export is None, cls.explanation, cls.has_scores, cls.chats is None) == \
            (servable, onnx, explanation, scores, chats), name
        for reason in (cls.servable, cls.onnx_export, cls.chats):
            assert reason is None or len(reason) > 40  # a refusal says why and what to do instead


def test_what_a_kind_cannot_do_is_refused_with_its_reason(trained) -> None:
    from fintune.config import ServeConfig
    from fintune.deploy.server import build_app

    for name in ("generation", "tagger"):
        run = trained[name]
        if name == "tagger":
            with pytest.raises(FintuneError, match="serves classification and regression runs"):
                build_app(run, ServeConfig())
        else:  # answers in text: OpenAI's chat API, not /v1/predict
            assert "/v1/chat/completions" in build_app(run, ServeConfig()).openapi()["paths"]
        with pytest.raises(FintuneError) as err:
            api.export(run, format="onnx")
        assert str(err.value) == PREDICTORS[name].onnx_export
        with pytest.raises(FintuneError, match="has no class probabilities|tags words"):
            FintuneModel.load(run).outputs(["acme beats"])
    with pytest.raises(FintuneError, match="already runs natively on the CPU"):
        api.export(trained["gbm"], format="onnx")


def test_loading_a_folder_that_is_not_a_run_says_so(tmp_path) -> None:
    with pytest.raises(FintuneError, match="is not a fintune run or model folder"):
        FintuneModel.load(tmp_path)
    pd.DataFrame({"a": [1]}).to_csv(tmp_path / "x.csv")
    (tmp_path / "fintune.json").write_text("{")
    with pytest.raises(FintuneError, match="cannot be read"):
        FintuneModel.load(tmp_path)


@pytest.mark.parametrize("field, value", [("temperature", -1), ("temperature", 0), ("temperature", float("nan")),
                                          ("temperature", 1e308), ("threshold", 1.5), ("max_length", 0)])
def test_fintune_json_values_are_checked_on_load(tmp_path, tiny_bert, field, value) -> None:
    """A hand-edited or damaged value is refused with one line naming it, never served."""
    import json

    from typer.testing import CliRunner

    from fintune import api
    from fintune.cli import app
    from fintune.errors import FintuneError
    from fintune.predictors import FintuneModel
    from tests.conftest import sentiment_frame, write_config

    run = tmp_path / "run"
    sentiment_frame(60).to_csv(tmp_path / "t.csv", index=False)
    api.train(write_config(tmp_path / "c.yaml", tiny_bert, tmp_path / "t.csv", run, train={"epochs": 1}),
              show_progress=False)
    meta_path = run / "model" / "fintune.json"
    meta = json.loads(meta_path.read_text())
    meta[field] = value
    meta_path.write_text(json.dumps(meta))  # NaN is written as NaN, which json reads back
    with pytest.raises(FintuneError, match=rf"fintune.json is not valid fintune metadata \({field}"):
        FintuneModel.load(run)
    pd_in = tmp_path / "in.csv"
    sentiment_frame(5).to_csv(pd_in, index=False)
    out = CliRunner().invoke(app, ["predict", str(run), "--input", str(pd_in), "--output", str(tmp_path / "o.csv")])
    assert out.exit_code == 2 and field in out.output and "Traceback" not in out.output
