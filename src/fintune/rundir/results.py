"""What a finished run holds, read back: metrics, the run's files, its splits; and the summary
printed when it finishes, with the commands that accept it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from fintune.config import read_yaml_file
from fintune.console import console, duration
from fintune.data import Examples, load_examples
from fintune.data.columns import load_table
from fintune.errors import FintuneError
from fintune.evaluation.checks import majority_baseline, warnings_for
from fintune.predictors import FintuneModel
from fintune.rundir.names import CONFIG, EVAL, METRICS, MODEL, SPLITS, SUMMARY_METRICS
from fintune.scoring.intervals import format_interval


def next_commands(model: FintuneModel) -> list[str]:
    """The commands that accept this model's run, in the order a user would take them."""
    commands = []
    if model.has_scores or model.chats is None:
        commands.append("report")
    if model.servable is None or model.chats is None:
        commands.append("serve")
    if model.chats is None:
        commands.append("chat")
    return commands + ["predict"]


def print_summary(metrics: dict[str, Any], run_dir: Path, commands: list[str] | None = None) -> None:
    """The table of the final metrics per held-out split, then the commands that take the run."""
    table = Table(title="results")
    table.add_column("metric")
    splits = [s for s in ("validation", "test") if s in metrics]
    for split in splits:
        table.add_column(split, justify="right")
    for name in SUMMARY_METRICS:
        values = [metrics[s].get(name) for s in splits]
        bounds = [((metrics[s].get("intervals") or {}).get("metrics") or {}).get(name) for s in splits]
        if any(v is not None for v in values):
            table.add_row(name, *(format_interval(v, b) for v, b in zip(values, bounds)))
    baselines = [majority_baseline(metrics[s]) for s in splits]
    if any(baselines):  # the accuracy to beat, beside the model's own
        label = next(b[0] for b in baselines if b)
        table.add_row(f"[dim]accuracy of always '{label}'[/]", *(f"[dim]{b[1]:.4f}[/]" if b else "" for b in baselines))
    console.print(table)
    if any("intervals" in metrics[s] for s in splits):
        console.print("[dim]in brackets: 95% bootstrap interval over the split's rows[/]")
    for line in warnings_for(metrics, splits):
        console.print(f"[bold yellow]warning:[/] {line}", soft_wrap=True)
    seconds = (metrics.get("training") or {}).get("train_seconds")
    if seconds is not None:
        console.print(f"trained in {duration(seconds)}")
    console.print(f"servable model: [bold]{run_dir / MODEL}[/]  (evaluation: {run_dir / EVAL})", soft_wrap=True)
    shown = [f"fintune {c} {run_dir}" + (" --input FILE --output FILE" if c == "predict" else "")
             for c in (commands or ["report", "serve"])]
    console.print("next: " + "   ".join(shown), soft_wrap=True)


def read_metrics(run: str | Path) -> dict[str, Any]:
    """The final metrics of a finished run."""
    path = Path(run) / METRICS
    if not path.exists():
        raise FintuneError(f"{run} has no {METRICS}: is it a finished run?")
    return _json_mapping(path)


def _json_mapping(path: Path) -> dict[str, Any]:
    """A JSON object from a run's file; a truncated or foreign file is a FintuneError naming it."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise FintuneError(f"{path}: cannot be read ({type(exc).__name__}); the run is damaged") from None
    if not isinstance(value, dict):
        raise FintuneError(f"{path}: not a JSON object; the run is damaged")
    return value


def read_run_files(run: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """A run folder's config (``config.yaml``) and final metrics (``metrics.json``, empty when
    unfinished) for listings; a damaged file is a FintuneError naming it, so that a listing can
    skip that one run and show the others."""
    config = read_yaml_file(run / CONFIG) or {}
    if not isinstance(config, dict):
        raise FintuneError(f"{run / CONFIG}: not a mapping of config sections; the run is damaged")
    metrics = _json_mapping(run / METRICS) if (run / METRICS).exists() else {}
    return config, metrics


def split_names(run: str | Path) -> list[str]:
    """The splits recorded in the run's ``splits.json`` (empty for runs that predate it)."""
    path = Path(run) / SPLITS
    return list(json.loads(path.read_text(encoding="utf-8"))) if path.exists() else []


def load_split(run: str | Path, split: str = "test",
               model: FintuneModel | None = None) -> tuple[Examples, Any]:
    """A finished run's own split, as examples and as the raw table rows (for group columns).

    Pass the run's ``model`` when it is loaded already, so it is not loaded again.
    """
    run = Path(run)
    path = run / SPLITS
    if not path.exists():
        raise FintuneError(f"{run} has no {SPLITS} (trained before fintune recorded its splits); "
                           "pass --data with a labeled file instead")
    record = json.loads(path.read_text(encoding="utf-8"))
    if split not in record:
        raise FintuneError(f"{run} has no '{split}' split; it has: {', '.join(record)}")
    model = model or FintuneModel.load(run)
    file, rows = record[split]["file"], record[split]["rows"]
    examples = load_examples(file, model.data_config, model.task, model.label_names)
    position = {int(r): i for i, r in enumerate(examples.rows)}
    index = np.array([position[r] for r in rows])
    table = load_table(file, model.data_config).loc[rows]
    return examples.take(index), table
