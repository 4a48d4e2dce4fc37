"""Showing one entity: lookup by any spelling, neighbours by weight, trend, the picture."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from fintune.errors import FintuneError
from fintune.graph import build_graph, show, write_graph

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class E:
    type: str
    text: str


def ents(*names: str) -> list[E]:
    return [E("PER" if name.startswith("Christian") else "ORG", name) for name in names]


# Deutsche Bank is named with Commerzbank 3 times, with Christian Sewing twice, with
# BaFin and with UBS once each (UBS is mentioned more often overall, so it comes first).
CORPUS = [
    ents("Deutsche Bank AG", "Commerzbank"),
    ents("Deutsche Bank", "Commerzbank", "Christian Sewing"),
    ents("Deutsche Bank's", "Commerzbank"),
    ents("Deutsche Bank", "Christian Sewing"),
    ents("Deutsche Bank", "BaFin"),
    ents("Deutsche Bank", "UBS"),
    ents("UBS", "Credit Suisse"),
    ents("UBS"),
]
SCORES = [[0.6] * len(found) for found in CORPUS[:4]] + [[-0.4] * len(found) for found in CORPUS[4:]]
DATES = ["2024-01-03", "2024-01-20", "2024-02-02", "2024-02-15", "2024-03-01", "2024-03-02", "2024-03-03",
         "2024-03-04"]


@pytest.fixture()
def graph_dir(tmp_path: Path) -> Path:
    texts = [f"text {i}" for i in range(len(CORPUS))]
    write_graph(build_graph(texts, CORPUS, SCORES, dates=DATES), tmp_path / "graph")
    return tmp_path / "graph"


@pytest.fixture()
def plain_graph_dir(tmp_path: Path) -> Path:
    texts = [f"text {i}" for i in range(len(CORPUS))]
    write_graph(build_graph(texts, CORPUS), tmp_path / "plain")
    return tmp_path / "plain"


def quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


def test_neighbours_by_weight_and_png(graph_dir: Path) -> None:
    console = quiet()
    shown = show(graph_dir, "Deutsche Bank", console=console)
    assert (shown.key, shown.label, shown.mentions, shown.degree) == ("deutsche bank", "Deutsche Bank", 6, 4)
    assert [(nb.label, nb.weight) for nb in shown.neighbours] == [
        ("Commerzbank", 3), ("Christian Sewing", 2), ("UBS", 1), ("BaFin", 1)]
    assert shown.neighbours[1].type == "PER"
    assert shown.png == graph_dir / "deutsche_bank.png"
    assert shown.png.read_bytes()[:8] == PNG_MAGIC and shown.png.stat().st_size > 5000
    printed = console.file.getvalue()
    assert "Commerzbank" in printed and "sentiment by period" in printed


def test_sentiment_and_trend(graph_dir: Path) -> None:
    shown = show(graph_dir, "deutsche bank", draw=False, console=quiet())
    assert shown.sentiment == pytest.approx((4 * 0.6 - 2 * 0.4) / 6, abs=1e-6)  # files keep 6 decimals
    assert [(p.period, p.documents) for p in shown.trend] == [("2024-01", 2), ("2024-02", 2), ("2024-03", 2)]
    assert [p.sentiment for p in shown.trend] == pytest.approx([0.6, 0.6, -0.4])
    assert shown.neighbours[0].sentiment == pytest.approx(0.6)  # Commerzbank's own sentiment
    assert shown.png is None


def test_any_spelling_finds_the_node(graph_dir: Path) -> None:
    assert show(graph_dir, "DEUTSCHE BANK AG", draw=False, console=quiet()).key == "deutsche bank"


def test_top_limits_neighbours_and_picture(graph_dir: Path, tmp_path: Path) -> None:
    shown = show(graph_dir, "Deutsche Bank", top=2, png=tmp_path / "pics" / "db.png", console=quiet())
    assert [nb.label for nb in shown.neighbours] == ["Commerzbank", "Christian Sewing"]
    assert (tmp_path / "pics" / "db.png").read_bytes()[:8] == PNG_MAGIC


def test_without_sentiment(plain_graph_dir: Path) -> None:
    shown = show(plain_graph_dir, "UBS", console=quiet())
    assert shown.sentiment is None and shown.trend == []
    assert {nb.label for nb in shown.neighbours} == {"Deutsche Bank", "Credit Suisse"}
    assert all(nb.sentiment is None for nb in shown.neighbours)
    assert shown.png is not None and shown.png.name == "ubs.png" and shown.png.exists()


def test_unknown_name_suggests_close_labels(graph_dir: Path) -> None:
    with pytest.raises(FintuneError, match="no entity 'Deutsch Bnak'.*Did you mean: Deutsche Bank"):
        show(graph_dir, "Deutsch Bnak", console=quiet())
    with pytest.raises(FintuneError, match="Did you mean: Credit Suisse"):
        show(graph_dir, "Suisse", console=quiet())  # a part of the name
    with pytest.raises(FintuneError) as info:
        show(graph_dir, "Lehman Brothers", console=quiet())
    assert "Did you mean" not in str(info.value)


def test_no_graph_there(tmp_path: Path) -> None:
    with pytest.raises(FintuneError, match="no graph at .*graph.graphml; build one"):
        show(tmp_path, "Deutsche Bank", console=quiet())


def test_cli_show(graph_dir: Path) -> None:
    from fintune.cli import app

    result = CliRunner().invoke(app, ["graph", "show", str(graph_dir), "Commerzbank", "--top", "3"])
    assert result.exit_code == 0, result.output
    assert "Deutsche Bank" in result.output and (graph_dir / "commerzbank.png").exists()
    missing = CliRunner().invoke(app, ["graph", "show", str(graph_dir), "Comerzbank"])
    assert missing.exit_code == 2 and "Did you mean: Commerzbank" in missing.output
