"""``fintune monitor``: is production traffic still like the training data?

Compares the prediction log with a sample of the run's training rows scored by the same
model the server used:

* PSI of the predicted-class distribution and of the confidence (regression: the value),
* PSI of the input length,
* embedding drift on the logged 32-number sketches of the sentence vectors: a domain
  classifier (logistic regression, 5-fold ROC-AUC; 0.5 = no drift) and the maximum mean
  discrepancy (RBF kernel, median bandwidth) with a permutation p-value.

The verdict (ok / warn / alert, or insufficient with too few logged rows) is written with a
plot; ``fintune monitor`` exits 1 on alert so a scheduler can act.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fintune.config import MonitorConfig
from fintune.data import Examples
from fintune.data.columns import load_table
from fintune.files import write_text
from fintune.deploy.predlog import read_log, sketch
from fintune.predictors import FintuneModel
from fintune.rundir import load_split
from fintune.tasks import task_of

EPS = 1e-4
STATUS_ORDER = ("ok", "warn", "alert")


@dataclass
class Check:
    name: str
    value: float
    warn: float | None
    alert: float | None
    status: str
    note: str = ""


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """Population stability index of a number, on the reference's quantile bins."""
    reference, current = np.asarray(reference, float), np.asarray(current, float)
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        return psi_categorical(reference.astype(str), current.astype(str))
    inner = edges[1:-1]
    ref = np.bincount(np.searchsorted(inner, reference, side="right"), minlength=len(edges) - 1)
    cur = np.bincount(np.searchsorted(inner, current, side="right"), minlength=len(edges) - 1)
    return _psi_counts(ref, cur)


def psi_categorical(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index of a category (e.g. the predicted class)."""
    levels = sorted(set(reference) | set(current))
    ref = np.array([np.sum(reference == level) for level in levels])
    cur = np.array([np.sum(current == level) for level in levels])
    return _psi_counts(ref, cur)


def _psi_counts(ref: np.ndarray, cur: np.ndarray) -> float:
    p = np.clip(ref / max(ref.sum(), 1), EPS, None)
    q = np.clip(cur / max(cur.sum(), 1), EPS, None)
    return float(np.sum((q - p) * np.log(q / p)))


def domain_auc(reference: np.ndarray, current: np.ndarray, seed: int = 0) -> float:
    """Cross-validated ROC-AUC of a classifier telling logged vectors from reference ones."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.vstack([reference, current])
    y = np.r_[np.zeros(len(reference)), np.ones(len(current))]
    folds = StratifiedKFold(n_splits=min(5, len(current), len(reference)), shuffle=True, random_state=seed)
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, C=1.0))
    return float(np.mean(cross_val_score(classifier, x, y, cv=folds, scoring="roc_auc")))


def mmd_test(reference: np.ndarray, current: np.ndarray, permutations: int = 200,
             max_rows: int = 500, seed: int = 0) -> tuple[float, float]:
    """Squared MMD (RBF kernel, median-distance bandwidth) and its permutation p-value."""
    rng = np.random.default_rng(seed)
    a = reference[rng.permutation(len(reference))[:max_rows]]
    b = current[rng.permutation(len(current))[:max_rows]]
    x = np.vstack([a, b]).astype(np.float64)
    sq = np.sum(x**2, 1)
    dist = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0)
    bandwidth = np.median(dist[np.triu_indices(len(x), 1)]) or 1.0
    kernel = np.exp(-dist / bandwidth)
    n = len(a)

    def stat(order: np.ndarray) -> float:
        k = kernel[np.ix_(order, order)]
        return float(k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean())

    observed = stat(np.arange(len(x)))
    null = [stat(rng.permutation(len(x))) for _ in range(permutations)]
    return observed, float((1 + np.sum(np.array(null) >= observed)) / (1 + permutations))


def _status(value: float, warn: float, alert: float) -> str:
    return "alert" if value >= alert else "warn" if value >= warn else "ok"


def _psi_check(name: str, value: float, cfg: MonitorConfig) -> Check:
    return Check(name, value, cfg.psi_warn, cfg.psi_alert, _status(value, cfg.psi_warn, cfg.psi_alert))


def reference_examples(run: Path, model: FintuneModel, reference: str | Path | None, rows: int) -> Examples:
    """A seeded sample of the run's training rows (or of the ``reference`` file)."""
    if reference is not None:
        table = load_table(str(reference), model.data_config.model_copy(update={"format": "auto"}))
        examples = model.examples_of(table, str(reference))
    else:
        examples = load_split(run, "train", model)[0]
    if len(examples) > rows:
        examples = examples.take(np.sort(np.random.default_rng(0).choice(len(examples), rows, replace=False)))
    return examples


def _served_model(run: Path, meta: dict[str, str]) -> FintuneModel:
    """The model the server ran (its folder is in the log), else the run's model."""
    folder = meta.get("model")
    return FintuneModel.load(folder if folder and Path(folder).exists() else run)


def drift_checks(model: FintuneModel, reference: Examples, log: pd.DataFrame, cfg: MonitorConfig) -> tuple[
        list[Check], dict[str, Any]]:
    """The checks, and the arrays the plot draws."""
    out, vectors = model.scores(reference, with_vectors=True)
    ref_len = np.array([len(t) for t in reference.texts])
    checks: list[Check] = []
    series: dict[str, Any] = {"reference_length": ref_len, "logged_length": log["n_chars"].to_numpy(float)}
    if task_of(model.task).scores_classes:
        ref_labels = np.array(model.labels_of(out))
        ref_conf = out.max(axis=1)
        checks.append(_psi_check("prediction_psi", psi_categorical(ref_labels, log["label"].to_numpy(str)), cfg))
        checks.append(_psi_check("confidence_psi", psi(ref_conf, log["confidence"].to_numpy(float)), cfg))
        series.update(reference_labels=ref_labels, logged_labels=log["label"].to_numpy(str),
                      reference_confidence=ref_conf, logged_confidence=log["confidence"].to_numpy(float))
    else:
        checks.append(_psi_check("value_psi", psi(out, log["value"].to_numpy(float)), cfg))
        series.update(reference_value=out, logged_value=log["value"].to_numpy(float))
    checks.append(_psi_check("length_psi", psi(ref_len, series["logged_length"]), cfg))
    logged = [s for s in log["sketch"] if s is not None]
    if vectors is not None and len(logged) >= 10:
        ref_sketch, cur_sketch = sketch(vectors), np.vstack(logged)
        auc = domain_auc(ref_sketch, cur_sketch)
        checks.append(Check("embedding_auc", auc, cfg.embedding_auc_warn, cfg.embedding_auc_alert,
                            _status(auc, cfg.embedding_auc_warn, cfg.embedding_auc_alert),
                            "domain classifier on sentence-vector sketches; 0.5 = indistinguishable"))
        mmd, p_value = mmd_test(ref_sketch, cur_sketch)
        checks.append(Check("embedding_mmd", mmd, None, None, "warn" if p_value < cfg.mmd_p_warn else "ok",
                            f"permutation p-value {p_value:.3f}"))
        series.update(reference_sketch=ref_sketch, logged_sketch=cur_sketch)
    return checks, series


def monitor(run: str | Path, log_path: str | Path | None, cfg: MonitorConfig, *, since: float | None = None,
            reference: str | Path | None = None, output: str | Path | None = None) -> dict[str, Any]:
    """Compare the prediction log with the training data; write ``drift.json`` and ``drift.png``."""
    run = Path(run)
    log_path = Path(log_path) if log_path else run / "serve" / "predictions.sqlite"
    log, meta = read_log(log_path, since)
    out_dir = Path(output) if output else run / "monitor"
    out_dir.mkdir(parents=True, exist_ok=True)
    verdict: dict[str, Any] = {"log": str(log_path), "logged_rows": len(log), "since": since}
    if len(log) < cfg.min_rows:
        verdict.update(status="insufficient", checks=[],
                       note=f"{len(log)} logged predictions; drift needs at least {cfg.min_rows} (monitor.min_rows)")
    else:
        model = _served_model(run, meta)
        examples = reference_examples(run, model, reference, cfg.reference_rows)
        checks, series = drift_checks(model, examples, log, cfg)
        worst = max((STATUS_ORDER.index(c.status) for c in checks), default=0)
        verdict.update(status=STATUS_ORDER[worst], reference_rows=len(examples),
                       checks=[asdict(c) for c in checks])
        verdict["plot"] = str(plot_drift(series, checks, out_dir / "drift.png"))
    write_text(out_dir / "drift.json", json.dumps(verdict, indent=2), "drift report")
    return verdict


def plot_drift(series: dict[str, Any], checks: list[Check], path: Path) -> Path:
    """Reference vs logged: predictions, confidence (or values), lengths, and the sketches' first
    two principal components."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    status = {c.name: f"{c.value:.3f} {c.status}" for c in checks}
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    ax = axes[0, 0]
    if "reference_labels" in series:
        levels = sorted(set(series["reference_labels"]) | set(series["logged_labels"]))
        ref = [np.mean(series["reference_labels"] == level) for level in levels]
        cur = [np.mean(series["logged_labels"] == level) for level in levels]
        x = np.arange(len(levels))
        ax.bar(x - 0.2, ref, 0.4, label="training")
        ax.bar(x + 0.2, cur, 0.4, label="logged")
        ax.set_xticks(x, levels)
        ax.set_title(f"predicted class (PSI {status['prediction_psi']})")
        _hist(axes[0, 1], series["reference_confidence"], series["logged_confidence"],
              f"confidence (PSI {status['confidence_psi']})")
    else:
        _hist(ax, series["reference_value"], series["logged_value"], f"predicted value (PSI {status['value_psi']})")
        axes[0, 1].axis("off")
    _hist(axes[1, 0], series["reference_length"], series["logged_length"],
          f"input length, characters (PSI {status['length_psi']})")
    ax = axes[1, 1]
    if "reference_sketch" in series:
        ref, cur = series["reference_sketch"], series["logged_sketch"]
        mean = ref.mean(0)
        _, _, components = np.linalg.svd(ref - mean, full_matrices=False)
        for data, name in ((ref, "training"), (cur, "logged")):
            xy = (data - mean) @ components[:2].T
            ax.scatter(xy[:, 0], xy[:, 1], s=5, alpha=0.4, label=name)
        ax.set_title(f"sentence vectors, 2 principal components (AUC {status['embedding_auc']})")
        ax.legend()
    else:
        ax.axis("off")
    axes[0, 0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _hist(ax: Any, reference: np.ndarray, current: np.ndarray, title: str) -> None:
    bins = np.histogram_bin_edges(np.r_[reference, current], bins=30)
    ax.hist(reference, bins=bins, alpha=0.5, density=True, label="training")
    ax.hist(current, bins=bins, alpha=0.5, density=True, label="logged")
    ax.set_title(title)
    ax.legend()


def print_verdict(verdict: dict[str, Any], console: Any) -> None:
    """The checks as a table and the verdict as one line."""
    from rich.table import Table

    table = Table(title=f"drift of {verdict['logged_rows']} logged predictions")
    for column in ("check", "value", "warn", "alert", "status", "note"):
        table.add_column(column)
    for check in verdict["checks"]:
        color = {"ok": "green", "warn": "yellow", "alert": "red"}[check["status"]]
        table.add_row(check["name"], f"{check['value']:.4f}", _opt(check["warn"]), _opt(check["alert"]),
                      f"[{color}]{check['status']}[/]", check["note"])
    if verdict["checks"]:
        console.print(table)
    console.print(f"verdict: [bold]{verdict['status']}[/]" + (f" ({verdict['note']})" if verdict.get("note") else ""))


def _opt(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


__all__ = ["monitor", "psi", "psi_categorical", "domain_auc", "mmd_test"]
