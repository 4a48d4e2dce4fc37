"""A financial knowledge graph: entities a corpus mentions together, with their sentiment.

``fintune graph build`` calls :func:`build`; ``fintune graph show`` calls :func:`show`.

Modules, one job each: :mod:`~fintune.graph.corpus` reads the texts and dates,
:mod:`~fintune.graph.runs` loads the runs, :mod:`~fintune.graph.ner` extracts entities,
:mod:`~fintune.graph.sentiment` scores them, :mod:`~fintune.graph.canonical` names them,
:mod:`~fintune.graph.build` counts them into a graph (by :mod:`~fintune.graph.periods`),
:mod:`~fintune.graph.files` writes it and :mod:`~fintune.graph.show` reads one entity back.
"""

from fintune.graph.build import BuiltGraph, build, build_graph
from fintune.graph.canonical import LEGAL_SUFFIXES, canonical_key, surface_form
from fintune.graph.files import GraphFiles, edge_table, node_table, trend_table, write_graph
from fintune.graph.ner import extract
from fintune.graph.periods import PERIODS, period_of
from fintune.graph.sentiment import polarities, score_sentiment, sentiment_values
from fintune.graph.show import (
    Neighbour, Shown, TrendPoint, find_node, load_graph, neighbours, show, suggest, trend,
)

__all__ = [
    "LEGAL_SUFFIXES", "PERIODS", "BuiltGraph", "GraphFiles", "Neighbour", "Shown", "TrendPoint", "build",
    "build_graph", "canonical_key", "edge_table", "extract", "find_node", "load_graph", "neighbours",
    "node_table", "period_of", "polarities", "score_sentiment", "sentiment_values", "show", "suggest",
    "surface_form", "trend", "trend_table", "write_graph",
]
