"""Logistic regression (ridge regression for a numeric target) on the feature matrix: the
model a credit-risk team fits first, and a member of the ensemble.

The inverse regularization strength is chosen by stratified K-fold cross-validation on the
training split (log loss; mean squared error for ridge), then refitted on all of it. The
coefficients are saved as JSON (``linear.json``): a reviewer reads them, and loading runs no
code, unlike a pickle.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from fintune.config import LinearConfig
from fintune.tasks import task_of

LINEAR_FILE = "linear.json"


class LinearModel:
    """Coefficients and intercepts of a fitted linear model, with the task they answer."""

    def __init__(self, coef: np.ndarray, intercept: np.ndarray, task: str, num_labels: int, c: float) -> None:
        self.coef, self.intercept = np.asarray(coef, dtype=np.float64), np.asarray(intercept, dtype=np.float64)
        self.task, self.num_labels, self.c = task, num_labels, c
        self.train_seconds = 0.0

    @classmethod
    def fit(cls, cfg: LinearConfig, task: str, num_labels: int, x: np.ndarray, y: np.ndarray,
            seed: int) -> LinearModel:
        """Cross-validate C on (x, y), refit on all rows."""
        from sklearn.linear_model import LogisticRegression, Ridge
        from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold

        start = time.perf_counter()
        x = _matrix(x)
        if task_of(task).answer == "labels":
            model = cls._fit_labels(cfg, task, x, np.asarray(y), seed)
        elif task_of(task).answer == "value":
            # Ridge's alpha is 1 / (2C) in the same units as logistic regression's C.
            search = GridSearchCV(Ridge(), {"alpha": [1 / (2 * c) for c in cfg.C]}, scoring="neg_mean_squared_error",
                                  cv=KFold(cfg.folds, shuffle=True, random_state=seed))
            search.fit(x, y)
            best = search.best_estimator_
            model = cls(best.coef_.reshape(1, -1), np.atleast_1d(best.intercept_), task, 1,
                        1 / (2 * best.alpha))
        else:
            folds = min(cfg.folds, int(np.bincount(np.asarray(y, dtype=np.int64)).min()))
            estimator = LogisticRegression(max_iter=5000, class_weight=cfg.class_weight)
            if folds >= 2:
                search = GridSearchCV(estimator, {"C": cfg.C}, scoring="neg_log_loss",
                                      cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
                search.fit(x, y)
                best = search.best_estimator_
            else:  # a class with one row: no folds to compare, the middle of the grid
                best = estimator.set_params(C=sorted(cfg.C)[len(cfg.C) // 2]).fit(x, y)
            model = cls(best.coef_, best.intercept_, task, num_labels, float(best.C))
        model.train_seconds = time.perf_counter() - start
        return model

    @classmethod
    def _fit_labels(cls, cfg: LinearConfig, task: str, x: Any, y: np.ndarray, seed: int) -> LinearModel:
        """Multi-label: one logistic regression per label, each with its own C by cross-validated
        log loss; a label that always (or never) holds in training gets its rate as a constant."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import GridSearchCV, StratifiedKFold

        coefs, intercepts, cs = [], [], []
        for j in range(y.shape[1]):
            target = (y[:, j] >= 0.5).astype(np.int64)
            rare = int(min(target.sum(), len(target) - target.sum()))
            if rare == 0:
                rate = float(np.clip(target.mean(), 1e-4, 1 - 1e-4))
                coefs.append(np.zeros(x.shape[1]))
                intercepts.append(np.log(rate / (1 - rate)))
                continue
            estimator = LogisticRegression(max_iter=5000, class_weight=cfg.class_weight)
            folds = min(cfg.folds, rare)
            if folds >= 2:
                search = GridSearchCV(estimator, {"C": cfg.C}, scoring="neg_log_loss",
                                      cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
                best = search.fit(x, target).best_estimator_
            else:
                best = estimator.set_params(C=sorted(cfg.C)[len(cfg.C) // 2]).fit(x, target)
            coefs.append(best.coef_[0])
            intercepts.append(float(best.intercept_[0]))
            cs.append(float(best.C))
        return cls(np.stack(coefs), np.asarray(intercepts), task, y.shape[1], float(np.median(cs)) if cs else 1.0)

    def outputs(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (n, k), one probability per label (multi-label), or predictions
        (n,) for regression."""
        z = np.asarray(_matrix(x) @ self.coef.T) + self.intercept
        if task_of(self.task).answer == "value":
            return z.reshape(-1).astype(np.float32)
        if task_of(self.task).answer == "labels":
            return (1 / (1 + np.exp(-z))).astype(np.float32)
        if z.shape[1] == 1:  # binary: the logit of the second class
            p = 1 / (1 + np.exp(-z[:, 0]))
            return np.stack([1 - p, p], axis=1).astype(np.float32)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)

    def save(self, folder: str | Path) -> None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        record: dict[str, Any] = {"task": self.task, "num_labels": self.num_labels, "C": self.c,
                                  "coef": self.coef.tolist(), "intercept": self.intercept.tolist()}
        (Path(folder) / LINEAR_FILE).write_text(json.dumps(record), encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path) -> LinearModel:
        record = json.loads((Path(folder) / LINEAR_FILE).read_text(encoding="utf-8"))
        return cls(np.asarray(record["coef"]), np.asarray(record["intercept"]), record["task"],
                   record["num_labels"], record["C"])


def _matrix(x: Any) -> Any:
    """Rows as float64: a dense array, or a SciPy sparse matrix kept sparse (word counts)."""
    return x.astype(np.float64) if hasattr(x, "tocsr") else np.asarray(x, dtype=np.float64)
