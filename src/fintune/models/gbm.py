"""Gradient-boosted trees (LightGBM) on the feature matrix: the credit-risk team's baseline.

Trees are added until the validation loss has not improved for ``early_stopping_rounds``;
the model is saved in LightGBM's own text format (``gbm.txt``), which a reviewer can read
and LightGBM loads anywhere, and which unlike a pickle runs no code on load.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from fintune.config import GBMConfig

GBM_FILE = "gbm.txt"


class GBMModel:
    """A LightGBM booster with the task it was trained for."""

    def __init__(self, booster: object, task: str, num_labels: int) -> None:
        self.booster, self.task, self.num_labels = booster, task, num_labels
        self.train_seconds = 0.0

    @classmethod
    def fit(cls, cfg: GBMConfig, task: str, num_labels: int, x: np.ndarray, y: np.ndarray,
            x_val: np.ndarray, y_val: np.ndarray, seed: int, num_threads: int | None = None) -> GBMModel:
        """Train on (x, y) with early stopping on the validation rows."""
        import lightgbm as lgb

        if task == "regression":
            objective = {"objective": "regression", "metric": "l2"}
        elif num_labels == 2:
            objective = {"objective": "binary", "metric": "binary_logloss"}
        else:
            objective = {"objective": "multiclass", "metric": "multi_logloss", "num_class": num_labels}
        params = {
            **objective, "learning_rate": cfg.learning_rate, "num_leaves": cfg.num_leaves,
            "min_child_samples": cfg.min_child_samples, "bagging_fraction": cfg.subsample,
            "bagging_freq": 1 if cfg.subsample < 1 else 0, "feature_fraction": cfg.colsample_bytree,
            "seed": seed, "deterministic": True, "verbosity": -1,
            **({"num_threads": num_threads} if num_threads else {}),
        }
        start = time.perf_counter()
        booster = lgb.train(
            params, lgb.Dataset(x, y), num_boost_round=cfg.n_estimators,
            valid_sets=[lgb.Dataset(x_val, y_val)],
            callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)],
        )
        model = cls(booster, task, num_labels)
        model.train_seconds = time.perf_counter() - start
        return model

    def outputs(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (n, k), or predictions (n,) for regression."""
        out = np.asarray(self.booster.predict(x, num_iteration=self.booster.best_iteration or None))
        if self.task == "regression":
            return out.astype(np.float32)
        if out.ndim == 1:  # binary: P(second class)
            out = np.stack([1 - out, out], axis=1)
        return out.astype(np.float32)

    def save(self, folder: str | Path) -> None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(Path(folder) / GBM_FILE),
                                num_iteration=self.booster.best_iteration or None)

    @classmethod
    def load(cls, folder: str | Path, task: str, num_labels: int) -> GBMModel:
        import lightgbm as lgb

        return cls(lgb.Booster(model_file=str(Path(folder) / GBM_FILE)), task, num_labels)
