"""Experiment tracking and run listing: a finished run logged to MLflow (and TensorBoard),
and ``fintune runs``, a table over the run folders.

Logging happens once the run is finished, from the files the run folder holds (config,
``metrics.jsonl``, ``metrics.json``, plots, report, card, model), so a resumed run, a run
trained on several processes and a run trained before tracking was turned on are logged the
same way (``fintune track RUN`` logs one after the fact). MLflow's default store is SQLite
beside the runs (``sqlite:///runs/mlflow.db``): no server, one file, readable by ``mlflow ui
--backend-store-uri sqlite:///runs/mlflow.db``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


from fintune.config import TrackConfig
from fintune.console import console
from fintune.errors import FintuneError, needs
from fintune.config import read_yaml_file
from fintune.rundir import CONFIG, EVAL, METRICS, MODEL, is_run, read_run_files
from fintune.training.loop import HISTORY

TRACKING_FILE = "tracking.json"  # the MLflow run id and store a run was logged to
SCALARS = ("micro_f1", "samples_f1", "subset_accuracy", "hamming_loss", "accuracy", "weighted_f1", "macro_f1", "roc_auc", "pr_auc", "ks", "brier", "ece", "f1", "precision",
           "recall", "mse", "mae", "r2", "directional_accuracy", "loss", "perplexity")


def flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1e-4}}`` -> ``{"train.lr": 1e-4}``; lists as their JSON text."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat(value, name + "."))
        else:
            out[name] = json.dumps(value) if isinstance(value, list) else value
    return out


def history(run: Path) -> Iterator[tuple[int, dict[str, float]]]:
    """(step, scalar metrics) of each evaluation during training, ``validation.`` and ``train_loss``."""
    path = run / HISTORY
    if not path.exists():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        scalars = {f"validation.{k}": float(v) for k, v in (record.get("validation") or {}).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if isinstance(record.get("train_loss"), (int, float)):
            scalars["train_loss"] = float(record["train_loss"])
        yield int(record["step"]), scalars


def final_scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """The final metrics of each held-out split and the training summary's numbers."""
    out = {}
    for split, values in metrics.items():
        if split in ("validation", "test") and isinstance(values, dict):
            out.update({f"final.{split}.{k}": float(values[k]) for k in SCALARS
                        if isinstance(values.get(k), (int, float))})
    for key in ("train_seconds", "train_samples_per_s", "trainable_params", "best_step"):
        value = (metrics.get("training") or {}).get(key)
        if isinstance(value, (int, float)):
            out[f"training.{key}"] = float(value)
    return out


def default_uri(run: Path) -> str:
    """SQLite beside the run folders: ``sqlite:///<parent of the run>/mlflow.db``."""
    return f"sqlite:///{(run.parent / 'mlflow.db').resolve()}"


def log_run(run: str | Path, cfg: TrackConfig) -> dict[str, Any]:
    """Log the finished run to what ``cfg`` turns on; returns what was logged where."""
    run = Path(run)
    if not (run / METRICS).exists():
        raise FintuneError(f"{run} is not a finished fintune run (no {METRICS}); tracking logs finished runs")
    done: dict[str, Any] = {}
    if cfg.mlflow:
        uri = cfg.tracking_uri or default_uri(run)
        try:
            with _bounded_retries():
                done["mlflow"] = _to_mlflow(run, cfg)
        except FintuneError:
            raise
        except Exception as exc:  # MLflow's own and the network's: one line naming the store
            last = next((line for line in reversed(str(exc).splitlines()) if line.strip()), type(exc).__name__)
            raise FintuneError(f"MLflow store {uri} did not take the run ({type(exc).__name__}: {last.strip()[:300]})"
                               ) from None
    if cfg.tensorboard:
        done["tensorboard"] = _to_tensorboard(run)
    if done:
        (run / TRACKING_FILE).write_text(json.dumps(done, indent=2), encoding="utf-8")
    return done


# A dead tracking server would otherwise be retried for minutes (MLflow's defaults: 7 retries
# with backoff, 120 s timeouts); a user's own settings of these variables win.
HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
               "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


@contextlib.contextmanager
def _bounded_retries() -> Iterator[None]:
    added = {k: v for k, v in HTTP_LIMITS.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def _to_mlflow(run: Path, cfg: TrackConfig) -> dict[str, str]:
    with needs("tracking", "MLflow tracking (track.mlflow)"):
        import mlflow
    uri = cfg.tracking_uri or default_uri(run)
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(cfg.experiment)
    if experiment is None:
        # Artifacts beside a SQLite store, not in ./mlruns of whatever folder fintune ran from.
        location = (run.parent / "mlartifacts").resolve().as_uri() if uri.startswith("sqlite:") else None
        experiment_id = client.create_experiment(cfg.experiment, artifact_location=location)
    else:
        experiment_id = experiment.experiment_id
    config = (read_yaml_file(run / CONFIG) or {}) if (run / CONFIG).exists() else {}
    metrics = json.loads((run / METRICS).read_text(encoding="utf-8"))
    tags = {"fintune.run_dir": str(run.resolve()), "task": str(config.get("task", "")),
            "model.kind": str((config.get("model") or {}).get("kind", "")),
            "model.backbone": str((config.get("model") or {}).get("backbone", "")),
            "strategy": str((config.get("strategy") or {}).get("name", ""))}
    mlrun = client.create_run(experiment_id, run_name=run.name, tags=tags)
    run_id = mlrun.info.run_id
    try:
        params = {k: str(v)[:6000] for k, v in flat(config).items()}
        items = list(params.items())
        for start in range(0, len(items), 100):  # MLflow takes at most 100 params per call
            client.log_batch(run_id, params=[mlflow.entities.Param(k, v) for k, v in items[start:start + 100]])
        now = int(time.time() * 1000)  # MLflow's UI orders and plots by wall-clock time too
        for step, scalars in history(run):
            client.log_batch(run_id, metrics=[mlflow.entities.Metric(k, v, now, step) for k, v in scalars.items()])
        client.log_batch(run_id, metrics=[mlflow.entities.Metric(k, v, now, 0)
                                          for k, v in final_scalars(metrics).items()])
        for name in (CONFIG, METRICS, HISTORY, "data_check.json", "report.html"):
            if (run / name).exists():
                client.log_artifact(run_id, str(run / name))
        if (run / EVAL).is_dir():
            client.log_artifacts(run_id, str(run / EVAL), EVAL)
        if (run / MODEL / "README.md").exists():
            client.log_artifact(run_id, str(run / MODEL / "README.md"), "card")
        model_uri = _log_model(run, run_id, uri, cfg) if cfg.log_model and (run / MODEL).is_dir() else None
        client.set_terminated(run_id, "FINISHED")
    except Exception:
        client.set_terminated(run_id, "FAILED")
        raise
    console.print(f"logged to MLflow: run {run_id} in experiment '{cfg.experiment}' ({uri})"
                  + (f"; model {model_uri}" if model_uri else "")
                  + (f", registered as '{cfg.register}'" if model_uri and cfg.register else ""), soft_wrap=True)
    return {"run_id": run_id, "tracking_uri": uri, "experiment": cfg.experiment, "model_uri": model_uri,
            "registered_model": cfg.register if model_uri else None}


def _log_model(run: Path, run_id: str, uri: str, cfg: TrackConfig) -> str | None:
    """The model folder as an artifact (as it is) and as an MLflow pyfunc model (with
    ``track.register``, a new registered version)."""
    import mlflow

    from fintune.deploy.mlflow_model import log_pyfunc

    mlflow.MlflowClient(tracking_uri=uri).log_artifacts(run_id, str(run / MODEL), MODEL)
    before = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(uri)  # the fluent log_model writes to the current store
    try:
        return log_pyfunc(run, run_id, cfg.register)
    except Exception as exc:  # the folder is logged: a model whose outputs MLflow cannot type still counts
        console.print(f"[bold yellow]warning:[/] the model folder is logged, but not as an MLflow model "
                      f"({type(exc).__name__}: {str(exc)[:200]})", soft_wrap=True)
        return None
    finally:
        mlflow.set_tracking_uri(before or "")


def _to_tensorboard(run: Path) -> str:
    with needs("tracking", "TensorBoard logging (track.tensorboard)"):
        from torch.utils.tensorboard import SummaryWriter
    folder = run / "tensorboard"
    writer = SummaryWriter(log_dir=str(folder))
    try:
        for step, scalars in history(run):
            for name, value in scalars.items():
                writer.add_scalar(name, value, step)
        metrics = json.loads((run / METRICS).read_text(encoding="utf-8"))
        for name, value in final_scalars(metrics).items():
            writer.add_scalar(name, value, 0)
    finally:
        writer.close()
    console.print(f"TensorBoard scalars in {folder} (tensorboard --logdir {folder})", soft_wrap=True)
    return str(folder)


# ---------------------------------------------------------------- fintune runs


def list_runs(root: str | Path) -> list[dict[str, Any]]:
    """One flat row per run folder under ``root``: its config's key settings, its state, and
    its final metrics (``validation.*``, ``test.*``)."""
    root = Path(root)
    rows = []
    # MLflow's artifact copies (config.yaml, metrics.json) live under mlartifacts/mlruns: not runs.
    found = [p for p in root.rglob(CONFIG)
             if is_run(p.parent) and not {"mlartifacts", "mlruns"} & set(p.relative_to(root).parts)]
    for folder in sorted(found):
        run = folder.parent
        try:
            config, metrics = read_run_files(run)
        except FintuneError as exc:  # one damaged run must not hide the others
            console.print(f"[yellow]warning:[/] skipping {run}: {exc}", soft_wrap=True)
            continue
        row: dict[str, Any] = {
            "run": str(run.relative_to(root)), "state": "finished" if metrics else "unfinished",
            "task": config.get("task"), "model.kind": (config.get("model") or {}).get("kind"),
            "model.backbone": (config.get("model") or {}).get("backbone"),
            "strategy": (config.get("strategy") or {}).get("name"),
            "train.lr": (config.get("train") or {}).get("lr"), "train.epochs": (config.get("train") or {}).get("epochs"),
            "train_seconds": (metrics.get("training") or {}).get("train_seconds"),
        }
        for split in ("validation", "test"):
            for key, value in (metrics.get(split) or {}).items():
                if key in SCALARS and isinstance(value, (int, float)):
                    row[f"{split}.{key}"] = value
        rows.append(row)
    return rows


def select_runs(rows: list[dict[str, Any]], filters: list[str], sort: str | None) -> list[dict[str, Any]]:
    """Rows whose ``key=value`` filters all match (as text), sorted by ``sort`` (``-key`` descending;
    rows without the key last)."""
    for item in filters:
        key, sep, value = item.partition("=")
        if not sep:
            raise FintuneError(f"--filter '{item}' must look like key=value, e.g. task=classification")
        rows = [r for r in rows if str(r.get(key.strip())) == value.strip()]
    if sort:
        key = sort.lstrip("-")
        known = [r for r in rows if isinstance(r.get(key), (int, float))]
        rest = [r for r in rows if not isinstance(r.get(key), (int, float))]
        rows = sorted(known, key=lambda r: r[key], reverse=sort.startswith("-")) + rest
    return rows


def print_runs(rows: list[dict[str, Any]], columns: list[str] | None = None) -> None:
    """The runs as a table: the settings that vary between them, then the metrics."""
    from rich.table import Table

    if not rows:
        console.print("no fintune runs found")
        return
    keys = columns or _columns(rows)
    if not sys.stdout.isatty():  # piped: every column whole, tab-separated, on stdout (data, not chatter)
        sys.stdout.write("\n".join("\t".join(line) for line in
                                   [keys, *[[_cell(r.get(k), k) for k in keys] for r in rows]]) + "\n")
        return
    table = Table(title=f"{len(rows)} runs")
    for key in keys:
        table.add_column(key, justify="left" if key in ("run", "state", "task", "model.kind", "model.backbone",
                                                         "strategy") else "right")
    for row in rows:
        table.add_row(*(_cell(row.get(k), k) for k in keys))
    console.print(table)


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    settings = ["run", "state", "task", "model.kind", "model.backbone", "strategy", "train.lr", "train.epochs"]
    shown = [k for k in settings if k in ("run", "state") or len({str(r.get(k)) for r in rows}) > 1 or len(rows) == 1]
    metrics = sorted({k for r in rows for k in r if k.startswith(("validation.", "test."))})
    return shown + metrics + ["train_seconds"]


def _cell(value: Any, key: str = "") -> str:
    if value is None:
        return ""
    if isinstance(value, float) and not key.startswith(("validation.", "test.")):
        return f"{value:g}"  # a setting as written: lr 5e-05 and 0.0001 must not look the same
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)
