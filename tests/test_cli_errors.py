"""Every bad input: a clear message naming what to fix, exit code 2, no traceback, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from fintune.cli import app
from tests.conftest import sentiment_frame

runner = CliRunner()


def _run(*args: str):
    result = runner.invoke(app, list(args))
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    return result, text


def _csv(tmp_path: Path, frame: pd.DataFrame, name: str = "bad.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def _with_row(row: dict) -> pd.DataFrame:
    frame = sentiment_frame(20)
    return pd.concat([frame.iloc[:4], pd.DataFrame([row]), frame.iloc[4:]], ignore_index=True)


def _bad_utf8(tmp_path: Path) -> Path:
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\nbanque générale beats,positive\n".encode("latin-1"))
    return path


def _jsonl(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


BAD_TRAIN = [
    ("missing file", lambda p: p / "nope.csv", ["nope.csv", "not found"]),
    ("missing column", lambda p: _csv(p, sentiment_frame(20).rename(columns={"text": "body"})),
     ["'text'", "body"]),
    ("empty text", lambda p: _csv(p, _with_row({"text": "   ", "label": "positive"})), ["row 5", "empty"]),
    ("non-string text", lambda p: _jsonl(p, [{"text": "acme beats", "label": "positive"},
                                             {"text": 5, "label": "negative"}]), ["row 2", "text"]),
    ("missing label", lambda p: _csv(p, _with_row({"text": "acme beats today", "label": None})),
     ["row 5", "label"]),
    ("undecodable bytes", _bad_utf8, ["latin.csv", "encoding"]),
    ("no rows", lambda p: _csv(p, pd.DataFrame({"text": [], "label": []})), ["bad.csv", "no data rows"]),
    ("lone surrogate", lambda p: _raw(p, "bad.jsonl", '{"text": "acme beats", "label": "positive"}\n'
                                      '{"text": "half \\ud800 emoji", "label": "negative"}\n'),
     ["bad.jsonl", "row 2", "column 'text'", "surrogate"]),
    ("duplicate csv columns", lambda p: _raw(p, "dup.csv", "text,label,text\nacme beats,positive,x\n"),
     ["dup.csv", "'text' more than once"]),
    ("duplicate json keys", lambda p: _raw(p, "dup.jsonl", '{"text": "a", "label": "positive", "text": "b"}\n'),
     ["dup.jsonl", "'text' twice"]),
    ("deeply nested json", lambda p: _raw(p, "deep.jsonl", '{"text": ' + "[" * 100_000 + "]" * 100_000 + "}\n"),
     ["deep.jsonl", "line 1"]),
]


def _raw(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("case", "make", "expected"), BAD_TRAIN, ids=[c[0] for c in BAD_TRAIN])
def test_bad_training_data(make_config, tmp_path: Path, case: str, make, expected: list[str]) -> None:
    config = make_config(train_file=make(tmp_path))
    result, text = _run("train", str(config), "--no-progress")
    assert result.exit_code == 2, text
    assert "Traceback" not in text
    for part in expected:
        assert part.lower() in text.lower(), (part, text)
    assert not (tmp_path / "runs" / "run").exists()


def test_unknown_config_key_names_nearest(make_config, tmp_path: Path) -> None:
    config = make_config(train={"learning_rate": 1e-3})
    result, text = _run("train", str(config))
    assert result.exit_code == 2
    assert "unknown key 'train.learning_rate'" in text and "lr," in text
    assert not (tmp_path / "runs" / "run").exists()


def test_bad_override(make_config) -> None:
    result, text = _run("train", str(make_config()), "train.lrr=3")
    assert result.exit_code == 2 and "did you mean 'train.lr'" in text


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_bert: Path) -> Path:
    from tests.conftest import write_config
    from fintune import api

    folder = tmp_path_factory.mktemp("cli_run")
    train = folder / "train.csv"
    sentiment_frame(120).to_csv(train, index=False)
    config = write_config(folder / "c.yaml", tiny_bert, train, folder / "run", train={"epochs": 1})
    return api.train(config, show_progress=False).run_dir


def test_unseen_label_in_evaluation_data(trained_run: Path, tmp_path: Path) -> None:
    data = _csv(tmp_path, _with_row({"text": "acme holds meeting", "label": "bullish"}), "eval.csv")
    result, text = _run("evaluate", str(trained_run), "--data", str(data))
    assert result.exit_code == 2 and "Traceback" not in text
    assert "bullish" in text and "row 5" in text
    assert not (trained_run / "eval" / "eval").exists()


def test_predict_bad_input_writes_nothing(trained_run: Path, tmp_path: Path) -> None:
    data = _csv(tmp_path, _with_row({"text": "", "label": "positive"}), "in.csv")
    out = tmp_path / "out.csv"
    result, text = _run("predict", str(trained_run), "--input", str(data), "--output", str(out))
    assert result.exit_code == 2 and "row 5" in text
    assert not out.exists()


def test_not_a_run_directory(tmp_path: Path) -> None:
    result, text = _run("predict", str(tmp_path), "--input", "x.csv", "--output", str(tmp_path / "o.csv"))
    assert result.exit_code == 2 and "not a fintune run" in text


def test_unknown_early_stopping_metric_fails_before_training(make_config, tmp_path: Path) -> None:
    config = make_config(train={"early_stopping": {"metric": "f1_weighted"}})
    result, text = _run("train", str(config), "--no-progress")
    assert result.exit_code == 2 and "weighted_f1" in text and "f1_weighted" in text
    assert not (tmp_path / "runs" / "run").exists()


def test_predict_input_with_a_lone_surrogate_names_the_row(make_config, tmp_path: Path) -> None:
    from fintune import api

    run = api.train(make_config(train={"epochs": 1}), show_progress=False).run_dir
    bad = _raw(tmp_path, "new.jsonl", '{"text": "acme beats"}\n{"text": "ok"}\n{"text": "\\udc00 tail"}\n')
    result, text = _run("predict", str(run), "--input", str(bad), "--output", str(tmp_path / "out.jsonl"))
    assert result.exit_code == 2 and "Traceback" not in text
    assert "row 3" in text and "surrogate" in text and not (tmp_path / "out.jsonl").exists()
