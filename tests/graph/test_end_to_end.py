"""`fintune graph build` and `fintune graph show` on real runs: a tiny NER and a tiny pair-sentiment model.

The tiny NER (see tests/tagging/conftest.py) tags the organizations acme, globex, initech,
umbrella as ORG and hooli, stark, wayne, tyrell as LOC; the pair model (see
tests/models/test_pairs.py) learned the sentiment toward a target from the target alone:
+0.8 for the first four companies, -0.8 for the others.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from fintune import api
from fintune.cli import app
from tests.models.test_pairs import target_frame

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Company words only from the tiny vocabulary, and no "bank" after one ("acme bank" is
# another entity). One row without a company, to show it adds no node.
CORPUS = [
    ("acme surges after stark misses", "2024-01-05"),
    ("acme shares rally on stark lawsuit", "2024-01-20"),
    ("globex reports record profit", "2024-02-03"),
    ("stark plunges after acme upgrade", "2024-02-15"),
    ("hooli holds its meeting today", "2024-02-20"),
    ("acme stock beats globex guidance", "2024-03-01"),
    ("the quarter of the stock", "2024-03-09"),
]


def texts_mentioning(*names: str) -> int:
    return sum(all(name in text.split() for name in names) for text, _ in CORPUS)


@pytest.fixture()
def runs(make_ner_config, make_config, tmp_path: Path) -> tuple[Path, Path]:
    """A tiny NER run and a tiny (text, target) sentiment regression run, on one thread
    (``train.num_threads: 1``; tests/conftest.py restores torch's threads after each test)."""
    ner = api.train(make_ner_config("ner.yaml", train={"num_threads": 1}), show_progress=False)
    pairs = tmp_path / "pairs.csv"
    target_frame(150).to_csv(pairs, index=False)
    sentiment = api.train(make_config("pair.yaml", pairs, task="regression",
                                      data={"text_column": "text", "pair_column": "target", "label_column": "score"},
                                      train={"epochs": 8, "lr": 1e-3, "num_threads": 1}), show_progress=False)
    return ner.run_dir, sentiment.run_dir


def test_build_and_show_with_real_runs(runs: tuple[Path, Path], tmp_path: Path) -> None:
    ner_run, sentiment_run = runs
    corpus, graph = tmp_path / "corpus.csv", tmp_path / "graph"
    pd.DataFrame(CORPUS, columns=["text", "date"]).to_csv(corpus, index=False)

    built = CliRunner().invoke(app, ["graph", "build", "--ner", str(ner_run), "--sentiment", str(sentiment_run),
                                     "--input", str(corpus), "--out", str(graph), "--date-column", "date"])
    assert built.exit_code == 0, built.output
    assert "4 entities, 2 edges from 7 texts" in built.output

    nodes = pd.read_csv(graph / "nodes.csv").set_index("id")
    assert set(nodes.index) == {"acme", "stark", "globex", "hooli"}
    assert nodes.loc["acme", "type"] == "ORG" and nodes.loc["stark", "type"] == "LOC"
    assert nodes.loc["acme", "documents"] == texts_mentioning("acme") == 4
    # The pair model scores the sentiment toward each entity, not the text: acme and stark
    # share three texts and still get opposite signs.
    assert nodes.loc["acme", "sentiment"] > 0.5 and nodes.loc["globex", "sentiment"] > 0.5
    assert nodes.loc["stark", "sentiment"] < -0.5 and nodes.loc["hooli", "sentiment"] < -0.5

    edges = {(row.source, row.target): row.weight for row in pd.read_csv(graph / "edges.csv").itertuples()}
    assert edges == {("acme", "stark"): texts_mentioning("acme", "stark"),
                     ("acme", "globex"): texts_mentioning("acme", "globex")}
    assert edges[("acme", "stark")] == 3

    trend = pd.read_csv(graph / "sentiment.csv", dtype={"period": str})
    acme = trend[trend["entity"] == "acme"]
    assert acme["period"].tolist() == ["2024-01", "2024-02", "2024-03"]
    assert acme["documents"].tolist() == [2, 1, 1] and (acme["sentiment"] > 0.5).all()
    assert (trend.loc[trend["entity"] == "stark", "sentiment"] < -0.5).all()

    summary = json.loads((graph / "graph.json").read_text())
    assert summary["counts"] == {"texts": 7, "nodes": 4, "edges": 2, "mentions": 4 + 3 + 2 + 1}
    assert summary["inputs"]["ner_run"] == str(ner_run) and summary["options"]["period"] == "month"

    # Any spelling with the same canonical key finds the node.
    shown = CliRunner().invoke(app, ["graph", "show", str(graph), "ACME Inc."])
    assert shown.exit_code == 0, shown.output
    assert "acme (ORG): 4 mentions in 4 texts, 2 neighbours" in shown.output
    assert "2024-03" in shown.output  # the trend table
    png = graph / "acme.png"
    assert png.read_bytes()[:8] == PNG_MAGIC
