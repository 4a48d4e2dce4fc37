"""Build a knowledge graph of the entities a corpus mentions together.

The work is split so the counting can be tested without models:

* :func:`~fintune.graph.ner.extract` runs an NER run over texts,
  :func:`~fintune.graph.sentiment.score_sentiment` a sentiment run over (text, entity)
  pairs: thin wrappers around ``FintuneModel``.
* :func:`build_graph` (here) is pure: entities (and scores, and dates) in, a ``networkx.Graph`` out.
* :func:`~fintune.graph.files.write_graph` writes GraphML, CSV and a JSON summary.
* :func:`build` (here) reads a corpus file (:mod:`fintune.graph.corpus`), runs the models
  and writes the graph: what ``fintune graph build`` calls.

Nodes are canonical names (see :mod:`fintune.graph.canonical`); an edge joins two
entities that occur in the same text, weighted by the number of such texts.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
from rich.console import Console

from fintune.errors import FintuneError
from fintune.graph.canonical import canonical_key, surface_form
from fintune.graph.corpus import read_corpus
from fintune.graph.files import GraphFiles, print_summary, write_graph
from fintune.graph.gazetteer import Gazetteer
from fintune.graph.ner import EntityLike, NerModel, extract
from fintune.graph.relations import annotate_relations
from fintune.graph.periods import check_period, period_of, timestamp
from fintune.graph.runs import describe_run, load_run
from fintune.graph.sentiment import SENTIMENT_TASKS, SentimentModel, check_sentiment_model, score_sentiment


@dataclass
class BuiltGraph:
    """The result of :func:`build`: the graph and the files it was written to."""

    graph: nx.Graph
    files: GraphFiles


# ---------------------------------------------------------------- counting (pure)


@dataclass
class _PeriodTally:
    """The scored texts of one period that mention a key: their mean is the trend point."""

    score_sum: float = 0.0
    documents: int = 0
    mentions: int = 0


@dataclass
class _Tally:
    """Everything counted for one canonical key while reading the texts."""

    mentions: int = 0
    documents: int = 0
    surfaces: Counter[str] = field(default_factory=Counter)
    types: Counter[str] = field(default_factory=Counter)
    scores: list[float] = field(default_factory=list)  # one per scored text
    periods: dict[str, _PeriodTally] = field(default_factory=lambda: defaultdict(_PeriodTally))


def build_graph(texts: Sequence[str], entities_per_text: Sequence[Sequence[EntityLike]],
                sentiments: Sequence[Sequence[float]] | None = None,
                dates: Sequence[Any] | pd.Series | None = None, period: str = "month",
                min_count: int = 1, types: Iterable[str] | None = None) -> nx.Graph:
    """The co-mention graph of already extracted entities.

    Args:
        texts: the corpus; only its length is used (each text is one document).
        entities_per_text: the entities found in each text (anything with ``.type`` and ``.text``).
        sentiments: one score in [-1, 1] per entity, parallel to ``entities_per_text``
            (see :func:`score_sentiment`); gives nodes ``sentiment`` and ``sentiment_n``.
        dates: one date per text (None or NaT where unknown); with ``sentiments``, gives
            nodes a ``trend`` (JSON) of mean sentiment per ``period``.
        period: day, week, month, quarter or year.
        min_count: drop entities mentioned fewer times (and their edges).
        types: keep only entities of these types (case-insensitive), e.g. ``["ORG"]``.

    Node ids are canonical keys; a node's ``label`` is its most frequent surface form and
    ``type`` its most frequent type (``types`` lists all seen). An edge's ``weight`` is the
    number of texts that mention both ends. Sentiment is averaged per text first: a text
    that names a bank three times is one opinion, not three.
    """
    check_period(period)
    if min_count < 1:
        raise FintuneError(f"min_count must be at least 1, got {min_count}")
    _check_parallel(texts, entities_per_text, sentiments, dates)
    wanted = [t.strip() for t in types or [] if t.strip()] or None  # no types given: keep all
    keep_types = None if wanted is None else {t.casefold() for t in wanted}
    date_list = None if dates is None else list(dates)

    tallies: dict[str, _Tally] = defaultdict(_Tally)
    pairs: Counter[tuple[str, str]] = Counter()
    for i, found in enumerate(entities_per_text):
        scores_here: dict[str, list[float]] = defaultdict(list)
        mentions_here: Counter[str] = Counter()
        for j, entity in enumerate(found):
            if keep_types is not None and entity.type.casefold() not in keep_types:
                continue
            key = canonical_key(entity.text)
            if not key:
                continue
            tally = tallies[key]
            tally.mentions += 1
            tally.surfaces[surface_form(entity.text) or entity.text] += 1
            tally.types[entity.type] += 1
            mentions_here[key] += 1
            if sentiments is not None:
                score = float(sentiments[i][j])
                if not np.isnan(score):
                    scores_here[key].append(score)
        when = timestamp(date_list[i]) if date_list is not None else None
        for key, count in mentions_here.items():
            tally = tallies[key]
            tally.documents += 1
            if scores_here[key]:
                score = float(np.mean(scores_here[key]))
                tally.scores.append(score)
                if when is not None:
                    bucket = tally.periods[period_of(when, period)]
                    bucket.score_sum += score
                    bucket.documents += 1
                    bucket.mentions += count
        pairs.update(combinations(sorted(mentions_here), 2))

    kept = {key: t for key, t in tallies.items() if t.mentions >= min_count}
    graph = nx.Graph(texts=len(texts), min_count=min_count, sentiment=sentiments is not None)
    if wanted is not None:
        graph.graph["types"] = ",".join(wanted)
    if sentiments is not None and dates is not None:
        graph.graph["period"] = period
    for key in sorted(kept, key=lambda k: (-kept[k].mentions, k)):
        graph.add_node(key, **_node_attributes(kept[key], sentiments is not None, dates is not None))
    for (a, b), weight in sorted(pairs.items()):
        if a in kept and b in kept:
            graph.add_edge(a, b, weight=weight)
    return graph


def _node_attributes(tally: _Tally, with_sentiment: bool, with_dates: bool) -> dict[str, Any]:
    # GraphML holds strings and numbers only: lists are joined with " | ", the trend is JSON.
    surfaces = [s for s, _ in _by_count(tally.surfaces)]
    kinds = [t for t, _ in _by_count(tally.types)]
    attrs: dict[str, Any] = {"label": surfaces[0], "type": kinds[0], "types": " | ".join(kinds),
                             "mentions": tally.mentions, "documents": tally.documents,
                             "aliases": " | ".join(surfaces)}
    if with_sentiment:
        attrs["sentiment"] = round(float(np.mean(tally.scores)), 6) if tally.scores else 0.0
        attrs["sentiment_n"] = len(tally.scores)
    if with_sentiment and with_dates:
        trend = [{"period": p, "sentiment": round(b.score_sum / b.documents, 6), "documents": b.documents,
                  "mentions": b.mentions} for p, b in sorted(tally.periods.items())]
        attrs["trend"] = json.dumps(trend, separators=(",", ":"))
    return attrs


def _by_count(counts: Counter[str]) -> list[tuple[str, int]]:
    # Most frequent first; ties keep the order first seen (Counter keeps insertion order).
    return sorted(counts.items(), key=lambda item: -item[1])


def _check_parallel(texts: Sequence[str], entities: Sequence[Sequence[Any]],
                    sentiments: Sequence[Sequence[float]] | None, dates: Sequence[Any] | None) -> None:
    if len(entities) != len(texts):
        raise ValueError(f"{len(entities)} entity lists for {len(texts)} texts; give one list per text")
    if dates is not None and len(dates) != len(texts):
        raise ValueError(f"{len(dates)} dates for {len(texts)} texts; give one date (or None) per text")
    if sentiments is None:
        return
    if len(sentiments) != len(texts):
        raise ValueError(f"{len(sentiments)} sentiment lists for {len(texts)} texts")
    for i, (found, scores) in enumerate(zip(entities, sentiments)):
        if len(found) != len(scores):
            raise ValueError(f"text {i}: {len(scores)} sentiment scores for {len(found)} entities")


# ---------------------------------------------------------------- the command


def build(ner: str | Path | NerModel | None, input: str | Path, out: str | Path,
          sentiment: str | Path | SentimentModel | None = None, *, text_column: str = "text",
          date_column: str | None = None, period: str = "month", batch_size: int = 32,
          min_count: int = 1, types: Sequence[str] | None = None, gazetteer: str | Path | None = None,
          relations: str | Path | Any | None = None,
          console: Console | None = None, show_progress: bool = True) -> BuiltGraph:
    """Read a corpus, extract entities, score their sentiment, and write the graph to ``out``.

    Args:
        ner: an NER run folder (token classification), or a loaded model; None with ``gazetteer``.
        input: CSV, JSONL or Parquet file with one text per row.
        out: the graph folder (created; files in it are replaced).
        sentiment: a sentiment run folder (classification or regression), or a loaded model.
        text_column: the column holding the texts.
        date_column: a column of dates; with ``sentiment``, gives sentiment per ``period``.
        period: day, week, month (default), quarter or year.
        batch_size: texts per model batch.
        min_count: drop entities mentioned fewer times.
        types: keep only these entity types, e.g. ``["ORG", "PER"]``.
        gazetteer: instead of ``ner``, a file of entity names (one a line, or a CSV with ``name``
            and ``type``): see :mod:`fintune.graph.gazetteer`.
        relations: a relation run (``task: relation``): each edge gets the relations it predicts
            between the two entities (see :mod:`fintune.graph.relations`).
        console: where the summary and the progress bars go (default: stderr).
        show_progress: False for no progress bars while the models run.

    Raises:
        DataError: the file cannot be read, or lacks the text or date column, or a date
            cannot be parsed.
        FintuneError: a run of the wrong task, a sentiment run without polarity, bad options.
    """
    console = console or Console(stderr=True)
    check_period(period, "--period")
    if min_count < 1:
        raise FintuneError(f"--min-count must be at least 1, got {min_count}")
    if batch_size < 1:
        raise FintuneError(f"--batch-size must be at least 1, got {batch_size}")
    corpus = read_corpus(input, text_column, date_column)  # before loading models: a bad file fails fast
    if (ner is None) == (gazetteer is None):
        raise FintuneError("give the entities' source: --ner RUN (an NER run) or --gazetteer FILE (a list of "
                           "names), one of them")
    ner_model = Gazetteer.read(gazetteer) if gazetteer is not None else load_run(ner, "--ner", ("token_classification",))
    rel_model = None if relations is None else load_run(relations, "--relations", ("relation",))
    sent_model = None if sentiment is None else load_run(sentiment, "--sentiment", SENTIMENT_TASKS)
    if sent_model is not None:
        check_sentiment_model(sent_model)  # before NER, which may take long
    elif date_column is not None:
        console.print("[yellow]note:[/] --date-column gives sentiment over time only with --sentiment; "
                      "dates are not used")

    texts = corpus.texts
    console.print(f"extracting entities from {len(texts)} texts of {corpus.source}")
    entities = extract(ner_model, texts, batch_size, console=console, show_progress=show_progress)
    scores = None
    if sent_model is not None:
        console.print(f"scoring sentiment of {sum(map(len, entities))} mentions")
        scores = score_sentiment(sent_model, texts, entities, batch_size, console=console,
                                 show_progress=show_progress)
    graph = build_graph(texts, entities, scores, corpus.dates if scores is not None else None, period=period,
                        min_count=min_count, types=types)
    if rel_model is not None:
        pairs = annotate_relations(graph, texts, entities, rel_model, batch_size, console, show_progress)
        console.print(f"{pairs} entity pairs classified: {graph.graph['relations']} edges got a relation")
    graph.graph.update({k: v for k, v in {
        "input": corpus.source, "ner_run": describe_run(ner), "gazetteer": None if gazetteer is None else str(gazetteer),
        "relation_run": describe_run(relations), "sentiment_run": describe_run(sentiment),
        "text_column": text_column, "date_column": date_column,
    }.items() if v is not None})  # GraphML has no null: leave unset options out
    files = write_graph(graph, out)
    print_summary(graph, files, console)
    return BuiltGraph(graph, files)
