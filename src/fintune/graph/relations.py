"""Relations on the graph's edges, from a relation run (``task: relation``): every ordered
pair of different entities that a text names is classified, and each edge keeps the counts of
the relations predicted for its two directions, the "no relation" label left out."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from itertools import permutations
from typing import Any

import networkx as nx
import pandas as pd
from rich.console import Console

from fintune.graph.canonical import canonical_key
from fintune.graph.ner import EntityLike
from fintune.graph.progress import progress_bar
from fintune.tasks import task_of


def relation_rows(texts: Sequence[str], entities: Sequence[Sequence[EntityLike]],
                  keep: set[str]) -> tuple[list[tuple[str, str]], list[dict[str, str]]]:
    """Each (head key, tail key) asked about, and its row: the text with the two surface forms."""
    keys, rows = [], []
    for text, found in zip(texts, entities):
        first = {}
        for entity in found:  # one mention per key: the first, as the markers mark the first
            key = canonical_key(entity.text)
            if key in keep and key not in first:
                first[key] = entity.text
        for head, tail in permutations(first, 2):
            keys.append((head, tail))
            rows.append({"text": text, "head": first[head], "tail": first[tail]})
    return keys, rows


def annotate_relations(graph: nx.Graph, texts: Sequence[str], entities: Sequence[Sequence[EntityLike]],
                       model: Any, batch_size: int = 32, console: Console | None = None,
                       show_progress: bool = True) -> int:
    """Classify every ordered entity pair of every text with ``model`` and put the counts on the
    edges: ``relation`` (the commonest, as "head -[relation]-> tail") and ``relations`` (JSON
    of all, by direction). Returns the number of pairs classified."""
    keys, rows = relation_rows(texts, entities, set(graph.nodes))
    if not rows:
        return 0
    head_column, tail_column = model.data_config.entity_columns
    frame = pd.DataFrame({model.data_config.text_column: [r["text"] for r in rows],
                          head_column: [r["head"] for r in rows], tail_column: [r["tail"] for r in rows]})
    with progress_bar("classifying relations", len(frame), console, show_progress) as on_batch:
        examples = model.as_examples(frame)
        predicted = model.labels_of(model.outputs(examples, batch_size, on_batch=on_batch))
    none = set(task_of(model.task).none_labels)
    tallies: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for (head, tail), relation in zip(keys, predicted):
        if relation not in none:
            tallies[tuple(sorted((head, tail)))][f"{head}\t{relation}\t{tail}"] += 1
    for (a, b), counts in tallies.items():
        if not graph.has_edge(a, b):
            continue
        (top, _), = counts.most_common(1)
        head, relation, tail = top.split("\t")
        graph.edges[a, b]["relation"] = (f"{graph.nodes[head].get('label', head)} -[{relation}]-> "
                                         f"{graph.nodes[tail].get('label', tail)}")
        graph.edges[a, b]["relations"] = json.dumps(
            [{"head": h, "relation": r, "tail": t, "texts": c}
             for (h, r, t), c in ((k.split("\t"), c) for k, c in counts.most_common())], ensure_ascii=False)
    graph.graph["relations"] = sum(1 for *_, d in graph.edges(data=True) if "relation" in d)
    return len(rows)
