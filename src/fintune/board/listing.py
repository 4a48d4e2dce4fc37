"""The runs the board lists: folders under the runs folder, their table, and names kept inside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from fintune.board.jobs import Jobs
from fintune.errors import FintuneError
from fintune.rundir import read_run_files
from fintune.tasks import task_of


def list_runs(runs: Path) -> list[Path]:
    """Run folders (those with a config.yaml), newest first."""
    if not runs.is_dir():
        return []
    # Hidden folders are fintune's own: the board's files, a run being replaced (.NAME.next).
    found = [p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / "config.yaml").exists()]
    return sorted(found, key=lambda p: (p / "config.yaml").stat().st_mtime, reverse=True)


def runs_table(runs: Path, jobs: Jobs) -> pd.DataFrame:
    """One row per run: status, what was trained, the primary metric and the cost."""
    rows = []
    for run in list_runs(runs):
        try:
            cfg, metrics = read_run_files(run)
        except FintuneError as exc:  # one damaged run is a row that says so, not a board that fails
            rows.append({"run": run.name, "status": f"damaged: {exc}"})
            continue
        task = str(cfg.get("task") or "classification")
        try:
            name = task_of(task).headline_metric
        except ValueError:
            rows.append({"run": run.name, "status": f"damaged: unknown task {task!r} in its config.yaml"})
            continue
        model, training = _section(cfg, "model"), _section(metrics, "training")
        report = run / "report.html"
        rows.append({
            "run": run.name, "status": jobs.status(run), "task": cfg.get("task"),
            "kind": model.get("kind"), "strategy": _section(cfg, "strategy").get("name"),
            "backbone": Path(str(model.get("backbone"))).name, "metric": name,
            "validation": _round(_section(metrics, "validation").get(name)),
            "test": _round(_section(metrics, "test").get(name)),
            "trainable_params": training.get("trainable_params"), "train_seconds": training.get("train_seconds"),
            "report": f"[open](/gradio_api/file={report})" if report.exists() else "",
        })
    return pd.DataFrame(rows, columns=["run", "status", "task", "kind", "strategy", "backbone", "metric",
                                       "validation", "test", "trainable_params", "train_seconds", "report"])


def _section(values: dict[str, Any], key: str) -> dict[str, Any]:
    """``values[key]`` when it is a mapping, else empty (a hand-edited config may hold anything)."""
    section = values.get(key)
    return section if isinstance(section, dict) else {}


def _round(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def run_folder(runs: Path, name: str | None) -> Path:
    """The folder of the run ``name``: a folder directly inside ``runs``, never outside it."""
    name = (name or "").strip()
    if not name or name in (".", "..") or name.startswith(".") or "/" in name or "\\" in name or "\x00" in name:
        raise FintuneError(f"run name '{name}' must be a plain folder name inside {runs} (no '/', no leading '.')")
    path = runs / name
    if path.resolve().parent != runs.resolve():
        raise FintuneError(f"run name '{name}' points outside {runs}")
    return path


def finished_runs(runs: Path) -> list[str]:
    return [p.name for p in list_runs(runs) if (p / "metrics.json").exists()]
