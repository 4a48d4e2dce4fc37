"""What a model or a run says about itself in a notebook: ``repr`` and an HTML card.

A quant who types ``model`` in a cell should see what it is (kind, task, backbone, labels),
what it measured and where it lives, not ``<TextPredictor object at 0x...>``.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from fintune.tasks import task_of

SHOWN_LABELS = 8  # more labels than this are counted, not listed


def metric_lines(metrics: dict[str, Any] | None, task: str) -> list[tuple[str, str]]:
    """One line per held-out split: the task's headline and selection metrics, and its rows."""
    if not metrics:
        return []
    declared = task_of(task)
    names = list(dict.fromkeys([declared.headline_metric, declared.primary_metric[0]]))
    lines = []
    for split in ("validation", "test"):
        values = metrics.get(split) or {}
        shown = [f"{n} {values[n]:.4f}" for n in names if isinstance(values.get(n), (int, float))]
        if shown:
            rows = f" (n={values['n']:,})" if isinstance(values.get("n"), int) else ""
            lines.append((split, ", ".join(shown) + rows))
    return lines


def card_html(title: str, rows: list[tuple[str, str]]) -> str:
    """A two-column table under a bold title: what Jupyter shows for ``_repr_html_``."""
    body = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
                   f"<td style='text-align:left'>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<div><b>{html.escape(title)}</b><table>{body}</table></div>"


def card_text(title: str, rows: list[tuple[str, str]]) -> str:
    """The same as plain text, keys aligned."""
    width = max((len(k) for k, _ in rows), default=0)
    return "\n".join([title] + [f"  {k.ljust(width)}  {v}" for k, v in rows])


class Described:
    """Mixin of :class:`~fintune.models.predictor.Predictor`: its repr and HTML card."""

    kind: str
    task: str
    label_names: list[str] | None
    meta: Any
    run_dir: Path | None
    metrics: dict[str, Any] | None

    def found_in(self, folder: Path) -> Any:
        """Remember the run ``folder`` belongs to (its ``model`` folder) and what the run measured."""
        run = folder.parent
        if folder.name == "model" and (run / "metrics.json").is_file():
            try:
                self.run_dir, self.metrics = run, json.loads((run / "metrics.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):  # a damaged metrics file must not stop the model loading
                self.run_dir = run
        return self

    def _card(self) -> tuple[str, list[tuple[str, str]]]:
        rows = [("task", self.task)]
        for key, value in (("backbone", self.meta.backbone or self.meta.base_model), ("strategy", self.meta.strategy)):
            if value:
                rows.append((key, str(value)))
        if self.label_names:
            names = ", ".join(self.label_names[:SHOWN_LABELS])
            more = len(self.label_names) - SHOWN_LABELS
            rows.append(("labels", names + (f" (+{more} more)" if more > 0 else "")))
        rows += metric_lines(self.metrics, self.task)
        if self.run_dir is not None:
            rows.append(("run folder", str(self.run_dir)))
        return f"FintuneModel: {self.kind} model", rows

    def __repr__(self) -> str:
        return card_text(*self._card())

    def _repr_html_(self) -> str:
        return card_html(*self._card())
