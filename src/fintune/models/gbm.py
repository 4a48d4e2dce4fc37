"""Gradient-boosted trees (LightGBM) on the feature matrix: the credit-risk team's baseline.

Trees are added until the validation loss has not improved for ``early_stopping_rounds``;
with ``bags`` > 1, several boosters on different row and column samples are averaged (seed
bagging: the same bias, less variance);
the model is saved in LightGBM's own text format (``gbm.txt``), which a reviewer can read
and LightGBM loads anywhere, and which unlike a pickle runs no code on load.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from fintune.config import GBMConfig
from fintune.tasks import task_of

GBM_FILE = "gbm.txt"


class GBMModel:
    """LightGBM boosters (one, or ``model.gbm.bags`` averaged) with the task they were trained for."""

    def __init__(self, boosters: list[Any], task: str, num_labels: int) -> None:
        self.boosters, self.task, self.num_labels = boosters, task, num_labels
        self.train_seconds = 0.0

    @property
    def booster(self) -> Any:
        """The first booster (the only one without bagging)."""
        return self.boosters[0]

    @classmethod
    def fit(cls, cfg: GBMConfig, task: str, num_labels: int, x: np.ndarray, y: np.ndarray,
            x_val: np.ndarray, y_val: np.ndarray, seed: int, num_threads: int | None = None) -> GBMModel:
        """Train on (x, y) with early stopping on the validation rows; with ``cfg.bags`` > 1,
        that many boosters on different row and column samples (seeds ``seed``, ``seed + 1``...)."""
        import lightgbm as lgb

        if task_of(task).answer == "value":
            objective = {"objective": "regression", "metric": "l2"}
        elif num_labels == 2:
            objective = {"objective": "binary", "metric": "binary_logloss"}
        else:
            objective = {"objective": "multiclass", "metric": "multi_logloss", "num_class": num_labels}
        params = {
            **objective, "learning_rate": cfg.learning_rate, "num_leaves": cfg.num_leaves,
            "min_child_samples": cfg.min_child_samples, "bagging_fraction": cfg.subsample,
            "bagging_freq": 1 if cfg.subsample < 1 else 0, "feature_fraction": cfg.colsample_bytree,
            "deterministic": True, "verbosity": -1,
            **({"num_threads": num_threads} if num_threads else {}),
        }
        start = time.perf_counter()
        train, valid = lgb.Dataset(x, y, free_raw_data=False), lgb.Dataset(x_val, y_val, free_raw_data=False)
        boosters = [
            lgb.train({**params, "seed": seed + bag}, train, num_boost_round=cfg.n_estimators, valid_sets=[valid],
                      callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)])
            for bag in range(cfg.bags)
        ]
        model = cls(boosters, task, num_labels)
        model.train_seconds = time.perf_counter() - start
        return model

    def outputs(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (n, k), or predictions (n,) for regression; the mean over the bags."""
        out = np.mean([np.asarray(b.predict(x, num_iteration=b.best_iteration or None)) for b in self.boosters], axis=0)
        if task_of(self.task).answer == "value":
            return out.astype(np.float32)
        if out.ndim == 1:  # binary: P(second class)
            out = np.stack([1 - out, out], axis=1)
        return out.astype(np.float32)

    def save(self, folder: str | Path) -> None:
        """``gbm.txt`` (and ``gbm_1.txt``... with bags), LightGBM's text format."""
        Path(folder).mkdir(parents=True, exist_ok=True)
        for i, booster in enumerate(self.boosters):
            booster.save_model(str(Path(folder) / _file(i)), num_iteration=booster.best_iteration or None)

    @classmethod
    def load(cls, folder: str | Path, task: str, num_labels: int) -> GBMModel:
        import lightgbm as lgb

        boosters, i = [], 0
        while (Path(folder) / _file(i)).exists():
            boosters.append(lgb.Booster(model_file=str(Path(folder) / _file(i))))
            i += 1
        return cls(boosters, task, num_labels)


def _file(bag: int) -> str:
    return GBM_FILE if bag == 0 else GBM_FILE.replace(".txt", f"_{bag}.txt")
