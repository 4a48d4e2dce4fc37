"""The files of a built graph: GraphML, node/edge/sentiment CSVs and a JSON summary."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import pandas as pd
from rich.console import Console
from rich.table import Table

from fintune.errors import FintuneError
from fintune.files import atomic_outputs

GRAPHML, NODES, EDGES, SENTIMENT, SUMMARY = "graph.graphml", "nodes.csv", "edges.csv", "sentiment.csv", "graph.json"
NODE_COLUMNS = ["id", "label", "type", "types", "mentions", "documents", "aliases"]
SENTIMENT_NODE_COLUMNS = ["sentiment", "sentiment_n"]
EDGE_COLUMNS = ["source", "target", "source_label", "target_label", "weight"]
TREND_COLUMNS = ["entity", "label", "period", "sentiment", "documents", "mentions"]
# Graph attributes that ``graph.json`` groups as inputs and as options; any others stay top-level.
INPUT_KEYS = ("input", "ner_run", "sentiment_run", "text_column", "date_column")
OPTION_KEYS = ("min_count", "types", "period")


@dataclass
class GraphFiles:
    """What :func:`write_graph` wrote."""

    graphml: Path
    nodes: Path
    edges: Path
    summary: Path
    sentiment: Path | None = None  # only when the graph has sentiment over time


def write_graph(graph: nx.Graph, out_dir: str | Path) -> GraphFiles:
    """Write ``graph.graphml``, ``nodes.csv``, ``edges.csv``, ``graph.json`` (counts and the
    graph's attributes: inputs and options) and, when nodes have a trend, ``sentiment.csv``."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FintuneError(f"{out} is a file; give a folder for the graph")
    files = GraphFiles(out / GRAPHML, out / NODES, out / EDGES, out / SUMMARY)
    trend = trend_table(graph)
    # All files land together, graph.json last: a killed build leaves the previous graph whole.
    with atomic_outputs(out, SUMMARY, "graph folder") as tmp:
        nx.write_graphml(graph, tmp / GRAPHML)
        node_table(graph).to_csv(tmp / NODES, index=False)
        edge_table(graph).to_csv(tmp / EDGES, index=False)
        if len(trend):
            files.sentiment = out / SENTIMENT
            trend.to_csv(tmp / SENTIMENT, index=False)
        (tmp / SUMMARY).write_text(json.dumps(summary(graph), indent=2, default=str), encoding="utf-8")
    if not len(trend) and (out / SENTIMENT).exists():
        (out / SENTIMENT).unlink()  # from an earlier build into this folder: no longer true
    return files


def summary(graph: nx.Graph, top: int = 10) -> dict[str, Any]:
    """What ``graph.json`` holds: counts, the inputs and options the graph was built with
    (from the graph's attributes), and the ``top`` entities by mentions."""
    attrs = dict(graph.graph)
    return {
        "counts": {"texts": attrs.pop("texts", None), "nodes": graph.number_of_nodes(),
                   "edges": graph.number_of_edges(), "mentions": _mentions(graph)},
        "inputs": {k: attrs.pop(k) for k in INPUT_KEYS if k in attrs},
        "options": {k: attrs.pop(k) for k in OPTION_KEYS if k in attrs},
        **attrs,  # "sentiment": whether nodes carry one; anything a caller added
        "top": [{"id": k, "label": a["label"], "type": a["type"], "mentions": a["mentions"]}
                for k, a in _ranked(graph)[:top]],
    }


def node_table(graph: nx.Graph) -> pd.DataFrame:
    """One row per node: id, label, type, types, mentions, documents, aliases (and
    sentiment, sentiment_n when the graph has sentiment), most mentioned first."""
    columns = NODE_COLUMNS + (SENTIMENT_NODE_COLUMNS if graph.graph.get("sentiment") else [])
    rows = [{"id": key, **{c: attrs.get(c) for c in columns[1:]}} for key, attrs in graph.nodes(data=True)]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values(["mentions", "id"], ascending=[False, True], kind="stable").reset_index(drop=True)


def edge_table(graph: nx.Graph) -> pd.DataFrame:
    """One row per edge: source, target, source_label, target_label, weight; heaviest first."""
    # The graph is undirected: source is the key that sorts first, so files diff cleanly.
    ends = [(*sorted((a, b)), w) for a, b, w in graph.edges(data="weight")]
    rows = [{"source": a, "target": b, "source_label": graph.nodes[a]["label"],
             "target_label": graph.nodes[b]["label"], "weight": w} for a, b, w in ends]
    table = pd.DataFrame(rows, columns=EDGE_COLUMNS)
    return table.sort_values(["weight", "source", "target"], ascending=[False, True, True],
                             kind="stable").reset_index(drop=True)


def trend_table(graph: nx.Graph) -> pd.DataFrame:
    """Sentiment over time, one row per (entity, period), from the nodes' ``trend``
    attribute: columns entity, label, period, sentiment, documents, mentions.

    ``sentiment`` is the mean over the period's texts that mention the entity
    (``documents``); ``mentions`` counts the mentions in those texts."""
    rows = [{"entity": key, "label": attrs["label"], **point}
            for key, attrs in graph.nodes(data=True) if "trend" in attrs
            for point in json.loads(attrs["trend"])]
    return pd.DataFrame(rows, columns=TREND_COLUMNS)


def print_summary(graph: nx.Graph, files: GraphFiles, console: Console, top: int = 10) -> None:
    """Counts, the most mentioned entities and where the files are."""
    console.print(f"graph: [bold]{graph.number_of_nodes()}[/] entities, [bold]{graph.number_of_edges()}[/] "
                  f"edges from {graph.graph.get('texts', 0)} texts ({_mentions(graph)} mentions)")
    if graph.number_of_nodes():
        with_sentiment = bool(graph.graph.get("sentiment"))
        table = Table(title=f"top {min(top, graph.number_of_nodes())} entities by mentions")
        for name in ("entity", "type", "mentions", "texts", "links") + (("sentiment",) if with_sentiment else ()):
            table.add_column(name, justify="left" if name in ("entity", "type") else "right")
        for key, attrs in _ranked(graph)[:top]:
            row = [attrs["label"], attrs["type"], str(attrs["mentions"]), str(attrs["documents"]),
                   str(graph.degree(key))]
            if with_sentiment:
                row.append(f"{attrs['sentiment']:+.3f}")
            table.add_row(*row)
        console.print(table)
    written = [p.name for p in (files.graphml, files.nodes, files.edges, files.sentiment, files.summary) if p]
    console.print(f"written to [bold]{files.graphml.parent}[/] ({', '.join(written)})")


def _ranked(graph: nx.Graph) -> list[tuple[str, dict[str, Any]]]:
    # Most mentioned first; ties by key, so the summary does not depend on insertion order.
    return sorted(graph.nodes(data=True), key=lambda node: (-node[1]["mentions"], node[0]))


def _mentions(graph: nx.Graph) -> int:
    return sum(attrs["mentions"] for _, attrs in graph.nodes(data=True))
