"""The run folder: its file names, the lifecycle of a run (check, start, finish), and what a
finished run holds (metrics, splits).

A run folder looks like this::

    config.yaml        the resolved config
    data_check.json    the data quality report
    splits.json        which file rows went to which split (the audit trail)
    checkpoint.pt      while training; removed when the run finishes
    metrics.json       written last: its presence means the run finished
    model/             the servable model (Hugging Face format) and its card
    eval/<split>/      metrics, plots and a report per held-out split
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from fintune.config import RunConfig, dump_config
from fintune.console import console
from fintune.data import Examples, PreparedData, load_examples
from fintune.data.columns import load_table
from fintune.errors import ConfigError, FintuneError
from fintune.modelcard import render_model_card
from fintune.predictors import FintuneModel
from fintune.training.distributed import is_main_process
from fintune.training.loop import BEST, CHECKPOINT

CONFIG = "config.yaml"
DATA_CHECK = "data_check.json"
SPLITS = "splits.json"
METRICS = "metrics.json"
MODEL = "model"
EVAL = "eval"
# What makes a folder a run; a data_check.json alone is not (`data check` then `train` is the usual path).
RUN_MARKERS = (CONFIG, METRICS, CHECKPOINT, MODEL)
SUMMARY_METRICS = ("f1", "precision", "recall", "exact_match", "token_f1", "accuracy", "weighted_f1", "macro_f1",
                   "roc_auc", "pr_auc", "ks", "gini", "brier", "ece", "mse", "mae", "r2", "directional_accuracy")


@dataclass
class RunResult:
    """Where a run lives and what it measured."""

    run_dir: Path
    metrics: dict[str, Any]

    @property
    def model_dir(self) -> Path:
        return self.run_dir / MODEL


@dataclass
class RunFolder:
    """One run's folder: what training writes, in the order it writes it."""

    path: Path

    def eval_dir(self, split: str) -> Path:
        return self.path / EVAL / split

    @property
    def holds_run(self) -> bool:
        return any((self.path / name).exists() for name in RUN_MARKERS)

    @property
    def finished(self) -> bool:
        """Finished, with nothing left to resume."""
        return (self.path / METRICS).exists() and not (self.path / CHECKPOINT).exists()

    def check(self, *, resume: bool, overwrite: bool) -> None:
        """Refuse to train over a run unless asked to continue or replace it."""
        if self.holds_run and not resume and not overwrite:
            raise ConfigError(
                f"run directory {self.path} already holds a run; pass --resume to continue it, "
                "--overwrite to replace it, or set output_dir to a new folder"
            )

    def start(self, cfg: RunConfig, report: dict[str, Any], *, resume: bool, overwrite: bool) -> None:
        """Make the folder (replaced with ``overwrite``) and write the config and data report.

        Called once data and backbone are known good, so a bad input leaves no folder behind.
        """
        if not is_main_process():
            return
        if overwrite and not resume and self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / CONFIG).write_text(dump_config(cfg), encoding="utf-8")
        (self.path / DATA_CHECK).write_text(json.dumps(report, indent=2), encoding="utf-8")

    def write_splits(self, cfg: RunConfig, data: PreparedData) -> None:
        """Which file rows went to which split: the audit trail, and what reports reload."""
        files = {"train": cfg.data.train, "validation": cfg.data.validation or cfg.data.train,
                 "test": cfg.data.test or cfg.data.train}
        record = {name: {"file": files[name], "rows": [int(r) for r in ex.rows]}
                  for name, ex in (("train", data.train), ("validation", data.validation), ("test", data.test))
                  if ex is not None and ex.rows is not None}
        (self.path / SPLITS).write_text(json.dumps(record), encoding="utf-8")

    def finish(self, cfg: RunConfig, model: FintuneModel, metrics: dict[str, Any], training: dict[str, Any],
               report: dict[str, Any]) -> RunResult:
        """Save the servable model, its card and the metrics; drop the checkpoints."""
        metrics["training"] = training
        model_dir = self.path / MODEL
        model.save(model_dir)
        (model_dir / "README.md").write_text(render_model_card(cfg, report, metrics, training), encoding="utf-8")
        (self.path / METRICS).write_text(json.dumps(metrics, indent=2), encoding="utf-8")
        for name in (CHECKPOINT, BEST):
            (self.path / name).unlink(missing_ok=True)
        print_summary(metrics, self.path)
        return RunResult(self.path, metrics)


def print_summary(metrics: dict[str, Any], run_dir: Path) -> None:
    """The table of the final metrics per held-out split."""
    table = Table(title="results")
    table.add_column("metric")
    splits = [s for s in ("validation", "test") if s in metrics]
    for split in splits:
        table.add_column(split, justify="right")
    for name in SUMMARY_METRICS:
        values = [metrics[s].get(name) for s in splits]
        if any(v is not None for v in values):
            table.add_row(name, *(f"{v:.4f}" if v is not None else "" for v in values))
    console.print(table)
    console.print(f"servable model: [bold]{run_dir / MODEL}[/]  (report: {run_dir / EVAL})")


def read_metrics(run: str | Path) -> dict[str, Any]:
    """The final metrics of a finished run."""
    path = Path(run) / METRICS
    if not path.exists():
        raise FintuneError(f"{run} has no {METRICS}: is it a finished run?")
    return json.loads(path.read_text(encoding="utf-8"))


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
