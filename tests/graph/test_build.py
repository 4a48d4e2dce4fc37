"""Building the graph: counts and edge weights, filters, sentiment, trend, files, the command."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from fintune.errors import DataError, FintuneError
from fintune.graph import (
    build, build_graph, extract, period_of, polarities, score_sentiment, sentiment_values, write_graph,
)


@dataclass(frozen=True)
class E:
    """Stands in for fintune.tagging.schemes.Entity: the graph reads .type and .text only."""

    type: str
    text: str


# Six texts: merged spellings, a repeated entity (no self-loop), an empty text, two types for one name.
TEXTS = [
    "Deutsche Bank AG and Commerzbank talk merger",
    "Deutsche Bank's CEO Christian Sewing on Commerzbank",
    "DEUTSCHE BANK sells Apple Inc. shares; Apple shrugs",
    "Apple and Commerzbank",
    "",
    "Christian Sewing at Deutsche Bank",
]
ENTITIES = [
    [E("ORG", "Deutsche Bank AG"), E("ORG", "Commerzbank")],
    [E("ORG", "Deutsche Bank's"), E("PER", "Christian Sewing"), E("ORG", "Commerzbank")],
    [E("ORG", "DEUTSCHE BANK"), E("ORG", "Apple Inc."), E("ORG", "Apple")],
    [E("ORG", "Apple"), E("ORG", "Commerzbank")],
    [],
    [E("PER", "Christian Sewing"), E("MISC", "Deutsche Bank")],
]
# Per entity; text 2 gives its two Apple mentions 1.0 and 0.0: one text, one opinion of 0.5.
SCORES = [[0.5, 0.5], [-0.5, -0.5, -0.5], [1.0, 1.0, 0.0], [0.0, 0.0], [], [0.2, 0.2]]
DATES = ["2024-01-05", "2024-01-20", "2024-02-01", "2024-02-10", "2024-03-01", None]


def weights(graph: nx.Graph) -> dict[frozenset[str], int]:
    return {frozenset((a, b)): w for a, b, w in graph.edges(data="weight")}


def test_edges_count_texts_mentioning_both() -> None:
    graph = build_graph(TEXTS, ENTITIES)
    assert set(graph.nodes) == {"deutsche bank", "commerzbank", "apple", "christian sewing"}
    assert weights(graph) == {
        frozenset({"deutsche bank", "commerzbank"}): 2,  # texts 0 and 1
        frozenset({"deutsche bank", "christian sewing"}): 2,  # texts 1 and 5
        frozenset({"commerzbank", "christian sewing"}): 1,
        frozenset({"deutsche bank", "apple"}): 1,
        frozenset({"apple", "commerzbank"}): 1,
    }
    assert nx.number_of_selfloops(graph) == 0  # "Apple Inc." and "Apple" in one text


def test_node_attributes() -> None:
    graph = build_graph(TEXTS, ENTITIES)
    bank = graph.nodes["deutsche bank"]
    assert bank["label"] == "Deutsche Bank"  # twice (the possessive trimmed), other spellings once
    assert bank["aliases"].split(" | ") == ["Deutsche Bank", "Deutsche Bank AG", "DEUTSCHE BANK"]
    assert (bank["type"], bank["types"]) == ("ORG", "ORG | MISC")  # the most frequent type wins
    assert (bank["mentions"], bank["documents"]) == (4, 4)
    apple = graph.nodes["apple"]
    assert (apple["mentions"], apple["documents"]) == (3, 2)
    assert "sentiment" not in bank and "trend" not in bank
    assert list(graph.nodes)[:2] == ["deutsche bank", "apple"]  # most mentioned first, ties by key


def test_min_count_drops_rare_entities_and_their_edges() -> None:
    graph = build_graph(TEXTS, ENTITIES, min_count=3)
    assert set(graph.nodes) == {"deutsche bank", "commerzbank", "apple"}
    assert weights(graph) == {frozenset({"deutsche bank", "commerzbank"}): 2,
                              frozenset({"deutsche bank", "apple"}): 1, frozenset({"apple", "commerzbank"}): 1}


def test_types_keep_only_those_mentions() -> None:
    graph = build_graph(TEXTS, ENTITIES, types=["org"])  # case-insensitive
    assert "christian sewing" not in graph
    assert graph.nodes["deutsche bank"]["mentions"] == 3  # the MISC mention in text 5 is not counted
    assert graph.nodes["deutsche bank"]["types"] == "ORG"
    assert graph.graph["types"] == "org"


def test_empty_names_are_skipped() -> None:
    graph = build_graph(["x"], [[E("ORG", "Inc."), E("ORG", "Apple")]])
    assert list(graph.nodes) == ["apple"] and graph.number_of_edges() == 0


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="2 entity lists for 1 texts"):
        build_graph(["a"], [[], []])
    with pytest.raises(ValueError, match="text 0: 1 sentiment scores for 2 entities"):
        build_graph(["a"], [[E("ORG", "A"), E("ORG", "B")]], sentiments=[[0.1]])


def test_sentiment_is_averaged_per_text() -> None:
    graph = build_graph(TEXTS, ENTITIES, SCORES)
    bank = graph.nodes["deutsche bank"]
    assert bank["sentiment"] == pytest.approx((0.5 - 0.5 + 1.0 + 0.2) / 4)
    assert bank["sentiment_n"] == 4
    # Text 2's Apple mentions (1.0, 0.0) are one opinion of 0.5; text 3 adds 0.0.
    assert graph.nodes["apple"]["sentiment"] == pytest.approx(0.25)
    assert "trend" not in bank  # no dates, no trend


def test_trend_by_month() -> None:
    graph = build_graph(TEXTS, ENTITIES, SCORES, dates=DATES, period="month")
    trend = json.loads(graph.nodes["deutsche bank"]["trend"])
    # Text 5 has no date: in the mean sentiment, not in the trend.
    assert trend == [{"period": "2024-01", "sentiment": 0.0, "documents": 2, "mentions": 2},
                     {"period": "2024-02", "sentiment": 1.0, "documents": 1, "mentions": 1}]
    apple = json.loads(graph.nodes["apple"]["trend"])
    assert apple == [{"period": "2024-02", "sentiment": 0.25, "documents": 2, "mentions": 3}]
    assert graph.graph["period"] == "month"


@pytest.mark.parametrize(("period", "label"), [
    ("day", "2024-03-05"), ("week", "2024-W10"), ("month", "2024-03"), ("quarter", "2024-Q1"), ("year", "2024"),
])
def test_period_labels(period: str, label: str) -> None:
    assert period_of(pd.Timestamp("2024-03-05"), period) == label


def test_unknown_period() -> None:
    with pytest.raises(FintuneError, match="use one of: day, week, month, quarter, year"):
        build_graph(TEXTS, ENTITIES, period="fortnight")


# ---------------------------------------------------------------- sentiment from models


def report_batches(n: int, batch_size: int, on_batch: Any) -> None:
    """Call ``on_batch`` as FintuneModel does: after each batch, with the inputs it held."""
    for start in range(0, n, batch_size):
        if on_batch is not None:
            on_batch(min(batch_size, n - start))


class FakeSentiment:
    """A sentiment run: records its inputs, answers from ``fn``."""

    def __init__(self, task: str, label_names: list[str] | None, fn: Any, pair_column: str | None = None) -> None:
        self.task, self.label_names, self.fn = task, label_names, fn
        self.data_config = SimpleNamespace(pair_column=pair_column)
        self.calls: list[Any] = []

    def outputs(self, examples: Any, batch_size: int = 64, on_batch: Any = None) -> np.ndarray:
        self.calls.append(examples)
        report_batches(len(examples), batch_size, on_batch)
        return np.asarray(self.fn(examples))


def three_class(texts: list[str]) -> list[list[float]]:
    # negative, neutral, positive
    return [[0.0, 0.2, 0.8] if "merger" in t else [0.7, 0.3, 0.0] if "Sewing" in t else [0.1, 0.8, 0.1]
            for t in texts]


@pytest.mark.parametrize(("labels", "signs"), [
    (["negative", "neutral", "positive"], [-1, 0, 1]),
    (["Bearish", "Bullish"], [-1, 1]),
    (["NEG", "pos", "other"], [-1, 1, 0]),
    (["down", "flat", "up"], [-1, 0, 1]),
    (["strong_positive", "mixed"], [1, 0]),
])
def test_polarity_from_label_names(labels: list[str], signs: list[int]) -> None:
    assert polarities(labels).tolist() == signs


@pytest.mark.parametrize("labels", [["LABEL_0", "LABEL_1"], None])
def test_labels_without_polarity_are_refused(labels: list[str] | None) -> None:
    with pytest.raises(FintuneError, match="positive/negative-like labels") as info:
        polarities(labels)
    if labels:
        assert "LABEL_0, LABEL_1" in str(info.value)


def test_sentiment_values() -> None:
    probs = np.array([[0.1, 0.2, 0.7], [0.6, 0.4, 0.0]])
    assert sentiment_values("classification", ["negative", "neutral", "positive"], probs) \
        == pytest.approx([0.6, -0.6])
    assert sentiment_values("regression", None, np.array([0.3, -0.9])) == pytest.approx([0.3, -0.9])


def test_text_model_gives_every_entity_its_texts_score() -> None:
    model = FakeSentiment("classification", ["negative", "neutral", "positive"], three_class)
    scores = score_sentiment(model, TEXTS, ENTITIES, batch_size=4)
    assert scores[0] == pytest.approx([0.8, 0.8])
    assert scores[1] == pytest.approx([-0.7] * 3)
    assert scores[3] == pytest.approx([0.0, 0.0])
    assert scores[4] == []
    assert model.calls == [[t for t, found in zip(TEXTS, ENTITIES) if found]]  # the empty text is not scored


def test_pair_model_scores_each_target_once() -> None:
    def toward(examples: Any) -> list[float]:
        return [0.9 if f"{target} beats" in text else -0.9 for text, target in zip(examples.texts, examples.pairs)]

    model = FakeSentiment("regression", None, toward, pair_column="target")
    texts = ["Apple beats, Commerzbank misses, Apple again"]
    entities = [[E("ORG", "Apple"), E("ORG", "Commerzbank"), E("ORG", "Apple")]]
    assert score_sentiment(model, texts, entities) == [pytest.approx([0.9, -0.9, 0.9])]
    assert model.calls[0].pairs == ["Apple", "Commerzbank"]  # the repeated (text, Apple) pair once


def test_wrong_sentiment_task_is_refused() -> None:
    model = FakeSentiment("generation", None, lambda x: [])
    with pytest.raises(FintuneError, match="classification .* or regression"):
        score_sentiment(model, TEXTS, ENTITIES)


class FakeNer:
    task = "token_classification"

    def __init__(self, table: dict[str, list[E]]) -> None:
        self.table, self.calls = table, []

    def entities(self, texts: list[str], batch_size: int = 32, on_batch: Any = None) -> list[list[E]]:
        self.calls.append(list(texts))
        report_batches(len(texts), batch_size, on_batch)
        return [self.table.get(t, []) for t in texts]


def test_extract_skips_blank_texts() -> None:
    ner = FakeNer(dict(zip(TEXTS, ENTITIES)))
    assert extract(ner, TEXTS + ["  "]) == ENTITIES + [[]]
    assert ner.calls == [[t for t in TEXTS if t]]


def test_progress_bars_count_the_inputs(corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each bar is advanced by the model's on_batch to its total: texts, then (text, entity) pairs."""
    from rich.progress import Progress

    advanced: dict[str, list[float]] = {}
    real_advance = Progress.advance

    def advance(self: Progress, task_id: Any, steps: float = 1) -> None:
        real_advance(self, task_id, steps)
        task = self.tasks[task_id]
        advanced.setdefault(task.description, []).append(task.completed)
        assert task.total is not None and task.completed <= task.total

    ner = FakeNer(dict(zip(TEXTS, ENTITIES)))
    model = FakeSentiment("regression", None, lambda ex: [0.0] * len(ex), pair_column="target")
    monkeypatch.setattr(Progress, "advance", advance)
    out = io.StringIO()
    build(ner, corpus, tmp_path / "graph", model, text_column="body", batch_size=2,
          console=Console(file=out, width=120, force_terminal=True))
    # 5 non-blank texts in batches of 2; 12 distinct (text, entity text) pairs in batches of 2.
    assert advanced["extracting entities"] == [2, 4, 5]
    assert advanced["scoring sentiment"] == [2, 4, 6, 8, 10, 12]
    assert "5/5" in out.getvalue() and "12/12" in out.getvalue()  # drawn on the console given (a terminal)


def test_no_progress_bar_when_asked(corpus: Path, tmp_path: Path) -> None:
    out = io.StringIO()
    build(FakeNer(dict(zip(TEXTS, ENTITIES))), corpus, tmp_path / "graph", text_column="body",
          console=Console(file=out, width=120, force_terminal=True, highlight=False), show_progress=False)
    assert "extracting entities from 6 texts" in out.getvalue()
    assert out.getvalue().count("extracting entities") == 1 and "5/5" not in out.getvalue()  # no bar


# ---------------------------------------------------------------- files


def test_write_and_reload(tmp_path: Path) -> None:
    graph = build_graph(TEXTS, ENTITIES, SCORES, dates=DATES)
    files = write_graph(graph, tmp_path / "g")

    back = nx.read_graphml(files.graphml)
    assert set(back.nodes) == set(graph.nodes)
    assert weights(back) == weights(graph)
    assert back.nodes["deutsche bank"]["mentions"] == 4
    assert back.nodes["deutsche bank"]["sentiment"] == pytest.approx(0.3)
    assert json.loads(back.nodes["apple"]["trend"]) == json.loads(graph.nodes["apple"]["trend"])

    nodes = pd.read_csv(files.nodes, keep_default_na=False)
    assert list(nodes.columns) == ["id", "label", "type", "types", "mentions", "documents", "aliases",
                                   "sentiment", "sentiment_n"]
    assert nodes["id"].tolist()[0] == "deutsche bank" and nodes["mentions"].is_monotonic_decreasing
    edges = pd.read_csv(files.edges)
    assert list(edges.columns) == ["source", "target", "source_label", "target_label", "weight"]
    assert edges["weight"].tolist() == [2, 2, 1, 1, 1]
    heaviest = {(row.source, row.target) for row in edges.head(2).itertuples()}
    assert heaviest == {("christian sewing", "deutsche bank"), ("commerzbank", "deutsche bank")}
    assert (edges["source"] < edges["target"]).all()
    assert edges.loc[0, "source_label"] == "Christian Sewing"

    assert files.sentiment is not None
    trend = pd.read_csv(files.sentiment, dtype={"period": str})
    assert list(trend.columns) == ["entity", "label", "period", "sentiment", "documents", "mentions"]
    bank = trend[trend["entity"] == "deutsche bank"]
    assert bank["period"].tolist() == ["2024-01", "2024-02"] and bank["documents"].tolist() == [2, 1]

    summary = json.loads(files.summary.read_text())
    assert summary["counts"] == {"texts": 6, "nodes": 4, "edges": 5, "mentions": 12}
    assert summary["options"] == {"min_count": 1, "period": "month"} and summary["sentiment"] is True
    assert summary["top"][0]["label"] == "Deutsche Bank"


def test_no_sentiment_no_trend_file(tmp_path: Path) -> None:
    files = write_graph(build_graph(TEXTS, ENTITIES), tmp_path)
    assert files.sentiment is None and not (tmp_path / "sentiment.csv").exists()
    assert "sentiment" not in pd.read_csv(files.nodes).columns


# ---------------------------------------------------------------- the command


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "news.csv"
    pd.DataFrame({"body": TEXTS, "published": DATES}).to_csv(path, index=False)
    return path


def test_build_end_to_end(corpus: Path, tmp_path: Path) -> None:
    ner = FakeNer(dict(zip(TEXTS, ENTITIES)))
    model = FakeSentiment("classification", ["negative", "neutral", "positive"], three_class)
    out = io.StringIO()
    result = build(ner, corpus, tmp_path / "graph", model, text_column="body", date_column="published",
                   console=Console(file=out, width=120))
    names = sorted(p.name for p in (tmp_path / "graph").iterdir())
    assert names == ["edges.csv", "graph.graphml", "graph.json", "nodes.csv", "sentiment.csv"]
    bank = result.graph.nodes["deutsche bank"]
    assert bank["sentiment"] == pytest.approx((0.8 - 0.7 + 0.0 - 0.7) / 4)
    summary = json.loads(result.files.summary.read_text())
    assert summary["inputs"] == {"input": str(corpus), "ner_run": "FakeNer", "sentiment_run": "FakeSentiment",
                                 "text_column": "body", "date_column": "published"}
    assert "4 entities, 5 edges from 6 texts" in out.getvalue() and "Deutsche Bank" in out.getvalue()


def test_missing_text_column_names_the_columns(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        build(FakeNer({}), corpus, tmp_path / "g", text_column="text")
    message = str(info.value)
    assert "text column 'text' (set by --text-column) not found" in message
    assert "the file has columns: body, published" in message
    assert not (tmp_path / "g").exists()


def test_bad_date_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "news.csv"
    pd.DataFrame({"text": ["a", "b", "c"], "date": ["2024-01-01", "", "not a date"]}).to_csv(path, index=False)
    with pytest.raises(DataError, match="row 3.*cannot parse 'not a date'"):
        build(FakeNer({}), path, tmp_path / "g", FakeSentiment("regression", None, lambda x: []),
              date_column="date")


@pytest.mark.parametrize(("values", "parsed"), [
    ([20240131, None], ["2024-01-31", None]),  # numbers (a float column, with the gap) read as dates
    (["2024-01-31", "", "2024-02-01 16:00"], ["2024-01-31", None, "2024-02-01 16:00"]),
])
def test_corpus_dates(values: list[Any], parsed: list[str | None]) -> None:
    from fintune.graph.corpus import corpus_dates

    expected = [None if p is None else pd.Timestamp(p) for p in parsed]
    assert corpus_dates(pd.DataFrame({"d": values}), "d", "news.csv") == expected


def test_ner_run_of_another_task_is_refused(corpus: Path, tmp_path: Path) -> None:
    model = FakeSentiment("classification", ["negative", "positive"], three_class)
    with pytest.raises(FintuneError, match="--ner .* is a classification run; it must be a token_classification"):
        build(model, corpus, tmp_path / "g", text_column="body")


def test_cli_reports_missing_column(corpus: Path, tmp_path: Path) -> None:
    from fintune.cli import app

    result = CliRunner().invoke(app, ["graph", "build", "--ner", str(tmp_path / "no-run"), "--input", str(corpus),
                                      "--out", str(tmp_path / "g")])
    assert result.exit_code == 2
    assert "text column 'text' (set by --text-column) not found" in result.output
