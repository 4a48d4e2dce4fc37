"""Walk-forward evaluation: retrain on an expanding window, score on the next block of time.

A single time split scores one period; a market model meets many. Fold k trains on time
blocks 1..k (its validation is the latest part of them) and is scored on block k + 1, so
every score is out of time, and the spread across folds shows how stable the model is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from fintune import api
from fintune.config import RunConfig
from fintune.errors import ConfigError
from fintune.files import write_text

RESULT = "walk_forward.json"


def walk_forward(config: RunConfig | str | Path, overrides: list[str] | tuple[str, ...] = (), *,
                 folds: int = 5, overwrite: bool = False, show_progress: bool = True) -> dict[str, Any]:
    """Train one run per fold under ``output_dir/fold_K``; write and return per-fold and mean test metrics."""
    cfg = api.load_run_config(config, overrides)
    if cfg.data.split.method != "time" or cfg.data.validation or cfg.data.test:
        raise ConfigError("walk-forward needs data.split.method: time, a data.date_column, and no "
                          "data.validation/data.test files (the folds are carved from data.train)")
    base = Path(cfg.output_dir)
    per_fold = []
    for fold in range(folds):
        run = api.train(cfg, [f"output_dir={base / f'fold_{fold + 1}'}", f"data.split.fold={fold}",
                              f"data.split.folds={folds}"], overwrite=overwrite, show_progress=show_progress)
        test = run.metrics["test"]
        per_fold.append({"fold": fold + 1, "train_rows": run.metrics["training"]["train_rows"],
                         **{k: v for k, v in test.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}})
    names = [k for k in per_fold[0] if k not in ("fold", "n", "train_rows")]
    summary = {
        "folds": per_fold,
        "mean": {k: _stat(np.mean, per_fold, k) for k in names},
        "std": {k: _stat(np.std, per_fold, k) for k in names},
    }
    base.mkdir(parents=True, exist_ok=True)
    write_text(base / RESULT, json.dumps(summary, indent=2))
    _plot(per_fold, names, base / "walk_forward.png")
    print_summary(summary, [n for n in names if n in SHOWN] or names[:4])
    api.console.print(f"walk-forward over {folds} folds written to [bold]{base / RESULT}[/] and walk_forward.png")
    return summary


# The metrics the summary table shows, where the task has them (all are in walk_forward.json).
SHOWN = ("accuracy", "weighted_f1", "roc_auc", "ks", "directional_accuracy", "mse", "mae", "r2")


def print_summary(summary: dict[str, Any], names: list[str]) -> None:
    """One row per fold (train rows, test rows, the metrics), then the mean and standard deviation."""
    from rich.table import Table

    table = Table(title=f"walk-forward: each fold tested on the next block of time ({len(summary['folds'])} folds)")
    for column in ("fold", "train rows", "test rows", *names):
        table.add_column(column, justify="right")
    for row in summary["folds"]:
        table.add_row(str(row["fold"]), f"{row['train_rows']:,}", f"{int(row.get('n', 0)):,}",
                      *(_fmt(row.get(n)) for n in names))
    for stat in ("mean", "std"):
        table.add_row(stat, "", "", *(_fmt(summary[stat].get(n)) for n in names))
    api.console.print(table)


def _fmt(value: Any) -> str:
    return "" if value is None else f"{value:.4f}"


def _stat(fn: Any, rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return float(fn(values)) if values else None


def _plot(rows: list[dict[str, Any]], names: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [n for n in names if n in ("accuracy", "roc_auc", "weighted_f1", "directional_accuracy",
                                       "mse", "mae", "r2")]
    fig, axes = plt.subplots(1, max(len(shown), 1), figsize=(3.2 * max(len(shown), 1), 3), squeeze=False)
    for ax, name in zip(axes[0], shown):
        ax.plot([r["fold"] for r in rows], [r.get(name) for r in rows], marker="o")
        ax.set_title(name)
        ax.set_xlabel("fold (later = more recent)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
