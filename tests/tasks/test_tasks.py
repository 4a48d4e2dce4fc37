"""Every registered task, table-driven: its declaration is consistent, and a tiny model of it
trains, saves, loads and predicts. A task registered without a row here fails the test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fintune import api
from fintune.predictors import FintuneModel
from fintune.scoring.metrics import metric_mode
from fintune.tasks import TASKS, task_of
from tests.conftest import sentiment_frame, topics_frame, write_config

HUB_TAGS = {"text-classification", "token-classification", "text-generation", "tabular-classification",
            "tabular-regression"}


def _classification(tmp: Path, bert: Path, llama: Path) -> tuple[Path, list]:
    sentiment_frame(120).to_csv(tmp / "t.csv", index=False)
    return write_config(tmp / "c.yaml", bert, tmp / "t.csv", tmp / "run", train={"epochs": 1}), ["acme beats"]


def _regression(tmp: Path, bert: Path, llama: Path) -> tuple[Path, list]:
    frame = sentiment_frame(120)
    frame["label"] = np.where(frame["label"] == "positive", 1.0, np.where(frame["label"] == "negative", -1.0, 0.0))
    frame.to_csv(tmp / "t.csv", index=False)
    return write_config(tmp / "c.yaml", bert, tmp / "t.csv", tmp / "run", task="regression",
                        train={"epochs": 1}), ["acme beats"]


def _generation(tmp: Path, bert: Path, llama: Path) -> tuple[Path, list]:
    from tests.models.test_generation import generation_config

    return generation_config(tmp, llama, "gen", {"name": "full"}, {"epochs": 1}), ["acme beats"]


def _token_classification(tmp: Path, bert: Path, llama: Path) -> tuple[Path, list]:
    from tests.tagging.conftest import tagged_sentences, write_jsonl

    data = write_jsonl(tmp / "ner.jsonl", tagged_sentences(60))
    config = write_config(tmp / "c.yaml", bert, data, tmp / "run", task="token_classification",
                          data={"train": str(data), "tokens_column": "tokens", "label_column": "tags",
                                "text_column": None}, train={"epochs": 1})
    return config, ["Acme Corp beat estimates"]


def _multi_label(tmp: Path, bert: Path, llama: Path) -> tuple[Path, list]:
    topics_frame(150).to_json(tmp / "t.jsonl", orient="records", lines=True)
    return write_config(tmp / "c.yaml", bert, tmp / "t.jsonl", tmp / "run", task="multi_label",
                        data={"label_column": "labels"}, train={"epochs": 1}), ["acme beats"]


def _relation(tmp: Path, bert: Path, llama: Path) -> tuple[Path, list]:
    import pandas as pd

    rows = []
    for i, (head, tail) in enumerate([("acme", "globex"), ("hooli", "stark"), ("wayne", "tyrell")] * 30):
        relation = ["acquires", "unknown", "sues"][i % 3]
        verb = {"acquires": "beats", "unknown": "holds", "sues": "lawsuit"}[relation]
        rows.append({"text": f"{head} {verb} {tail} the bank {i}", "head": head, "tail": tail, "label": relation})
    pd.DataFrame(rows).to_csv(tmp / "t.csv", index=False)
    return write_config(tmp / "c.yaml", bert, tmp / "t.csv", tmp / "run", task="relation",
                        data={"entity_columns": ["head", "tail"]}, train={"epochs": 1}), \
        pd.DataFrame({"text": ["acme beats globex"], "head": ["acme"], "tail": ["globex"]})


ROWS: dict[str, tuple[Callable[..., tuple[Path, list]], str]] = {
    "classification": (_classification, "class"),
    "regression": (_regression, "value"),
    "generation": (_generation, "text"),
    "token_classification": (_token_classification, "tags"),
    "multi_label": (_multi_label, "labels"),
    "relation": (_relation, "class"),
}


def test_every_task_has_a_row() -> None:
    assert set(ROWS) == set(TASKS), "add a row to ROWS for each registered task"


@pytest.mark.parametrize("name", sorted(TASKS))
def test_the_declaration_is_consistent(name: str) -> None:
    task = task_of(name)
    metric, mode = task.primary_metric
    assert mode == metric_mode(metric), f"{name}: {metric} is a '{metric_mode(metric)}' metric"
    assert task.pipeline_tag in HUB_TAGS and (task.tabular_pipeline_tag is None or task.tabular_pipeline_tag in HUB_TAGS)
    assert task.card_outputs and task.answer == ROWS[name][1]
    assert task.scores_classes == (task.answer == "class")
    # A task that calibrates its probabilities has the measured calibration on its card.
    assert (task.card_calibration is None) == (task.calibration is not None)
    assert task.calibration == {"class": "softmax", "labels": "per_label"}.get(task.answer)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_a_tiny_model_of_each_task_trains_saves_loads_and_predicts(name: str, tmp_path: Path, tiny_bert: Path,
                                                                    tiny_llama: Path) -> None:
    build, _ = ROWS[name]
    config, inputs = build(tmp_path, tiny_bert, tiny_llama)
    result = api.train(config, show_progress=False)
    metric = task_of(name).primary_metric[0]
    assert metric in result.metrics["validation"] or name == "generation"  # generation scores answers, selects by loss
    model = FintuneModel.load(result.run_dir)
    assert model.task == name
    out = model.predict(inputs)
    assert len(out) == len(inputs)
    assert f'pipeline_tag: {task_of(name).pipeline_tag}' in (result.run_dir / "model" / "README.md").read_text()


def test_an_unknown_task_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="expected one of classification, regression"):
        task_of("clasification")
