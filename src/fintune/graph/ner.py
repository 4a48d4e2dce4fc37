"""Entities from an NER (token classification) run: what the graph's nodes are made of."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from rich.console import Console

from fintune.graph.progress import OnBatch, progress_bar


class EntityLike(Protocol):
    """What the graph needs of an entity (``fintune.tagging.schemes.Entity`` has it)."""

    type: str
    text: str


class NerModel(Protocol):
    """What :func:`extract` needs of an NER run (``FintuneModel`` has it)."""

    task: str

    def entities(self, texts: list[str], batch_size: int = 32,
                 on_batch: OnBatch | None = None) -> list[list[Any]]: ...


def extract(ner_model: NerModel, texts: Sequence[str], batch_size: int = 32, *,
            console: Console | None = None, show_progress: bool = True) -> list[list[Any]]:
    """The entities of each text, by an NER (token classification) run.

    Blank texts get no entities without reaching the model. While the model runs, a
    transient progress bar counts the texts done on ``console`` (default: stderr).
    """
    todo = [i for i, text in enumerate(texts) if text.strip()]
    found: list[list[Any]] = []
    if todo:
        with progress_bar("extracting entities", len(todo), console, show_progress) as on_batch:
            found = ner_model.entities([texts[i] for i in todo], batch_size=batch_size, on_batch=on_batch)
    if len(found) != len(todo):
        raise ValueError(f"the NER model returned {len(found)} entity lists for {len(todo)} texts")
    result: list[list[Any]] = [[] for _ in texts]
    for i, entities in zip(todo, found):
        result[i] = list(entities)
    return result
