"""The board's Try it tab: a loaded model per run, and one text's or row's prediction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from fintune.data import Examples
from fintune.errors import FintuneError
from fintune.models.kinds.generation import GenerationPredictor
from fintune.predictors import FintuneModel, TaggerPredictor
from fintune.tasks import task_of


class Models:
    """Loaded models by run, reloaded when the run's model changes on disk."""

    def __init__(self) -> None:
        self.cache: dict[str, tuple[float, FintuneModel]] = {}

    def get(self, run: Path) -> FintuneModel:
        stamp = (run / "model" / "fintune.json").stat().st_mtime if (run / "model" / "fintune.json").exists() else 0.0
        key = str(run)
        if key not in self.cache or self.cache[key][0] != stamp:
            self.cache[key] = (stamp, FintuneModel.load(run))
        return self.cache[key][1]


def marked_entities(text: str, entities: list[Any]) -> list[tuple[str, str | None]]:
    """The text in pieces, each entity labelled by its type and the rest by None (for
    Gradio's HighlightedText)."""
    pieces: list[tuple[str, str | None]] = []
    at = 0
    for e in entities:
        if e.start > at:
            pieces.append((text[at:e.start], None))
        pieces.append((text[e.start:e.end], e.type))
        at = e.end
    if at < len(text):
        pieces.append((text[at:], None))
    return pieces


def try_it(model: FintuneModel, text: str | None, row: pd.DataFrame | None) -> tuple[dict[str, float] | str, list]:
    """Label probabilities (or the generated answer) and attributions of one text or row; for
    a tagger, its entities and the text with each entity marked by its type."""
    from fintune.evaluation.explain import explain

    if isinstance(model, TaggerPredictor):
        if not (text or "").strip():
            raise FintuneError("type a text first")
        found = model.entities([text or ""])[0]
        return ", ".join(f"{e.text} ({e.type})" for e in found) or "no entities", marked_entities(text or "", found)
    if model.data_config.text_column is not None and model.data_config.feature_columns is None:
        if not (text or "").strip():
            raise FintuneError("type a text first")
        examples, table = Examples([text], None, None, "board"), None
    else:
        if row is None or row.empty:
            raise FintuneError("fill in the row's columns first")
        table = row.iloc[:1].reset_index(drop=True)
        table.index = [1]
        for column in table.columns:  # the page's cells are text: numbers become numbers again
            try:
                table[column] = pd.to_numeric(table[column])
            except (ValueError, TypeError):
                pass
        examples = model.examples_of(table, "board")
    if isinstance(model, GenerationPredictor):
        return model.generate(examples)[0], []
    out = model.outputs(examples)
    if task_of(model.task).answer == "value":
        return {f"prediction {float(out[0]):.4f}": 1.0}, []
    probs = {name: float(p) for name, p in zip(model.label_names or [], out[0])}
    if model.explanation_method is None:
        return probs, []
    parts = explain(model, examples, 0, table).parts
    peak = max((abs(v) for _, v in parts), default=0.0) or 1.0
    # Scaled to [-1, 1]: the page colours toward the label (positive) or against it (negative).
    return probs, [(part + " ", float(value) / peak) for part, value in parts]


def attribution_html(parts: list[tuple[str, float]]) -> str:
    """Word attributions as the report draws them: green toward the label, red against."""
    from fintune.evaluation.explain import highlighted

    return f"<p>{highlighted([(part.strip(), value) for part, value in parts])}</p>"
