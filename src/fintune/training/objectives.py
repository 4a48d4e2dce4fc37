"""What training minimizes and tracks: the supervised loss, the validation metrics and the
metric that picks the best weights."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from fintune.config import TrainConfig
from fintune.data import Examples
from fintune.errors import ConfigError
from fintune.scoring.metrics import compute_metrics, metric_mode, primary_metric
from fintune.scoring.multilabel import bce_loss
from fintune.tasks import task_of


def class_weights(labels: np.ndarray, num_labels: int) -> torch.Tensor:
    # Inverse frequency, scaled so a balanced set gets weight 1 for every class.
    counts = np.bincount(labels, minlength=num_labels).astype(np.float64)
    weights = len(labels) / (num_labels * np.maximum(counts, 1))
    return torch.tensor(weights, dtype=torch.float32)


Objective = Callable[[torch.Tensor, np.ndarray], torch.Tensor]
"""Loss of a batch from its logits and the row indices of its examples."""

Evaluator = Callable[[nn.Module, dict[str, Any], "torch.dtype | None"], dict[str, Any]]
"""Validation metrics of a model from the encoded validation split and the autocast dtype."""

Batcher = Callable[[np.ndarray, int, int], tuple[dict[str, torch.Tensor], Any]]
"""A training batch from its row indices, the epoch and the step, and what the objective reads
in place of the indices (pretraining: the masked inputs and their token labels). The batch
must depend on those three only, so a resumed run trains on the same batches."""


class Supervised:
    """Cross-entropy (optionally class-weighted) or mean squared error against the labels."""

    def __init__(self, labels: np.ndarray, task: str, weights: torch.Tensor | None = None,
                 focal_gamma: float | None = None, row_weights: np.ndarray | None = None) -> None:
        self.labels, self.task, self.weights = torch.tensor(labels), task, weights
        self.values = task_of(task).answer == "value"  # mean squared error, not cross-entropy
        self.multi_hot = task_of(task).answer == "labels"  # a sigmoid per label: binary cross-entropy
        self.focal_gamma = focal_gamma
        # data.weight_column: each row's share of the batch loss (a weak label's confidence).
        self.row_weights = None if row_weights is None else torch.tensor(row_weights, dtype=torch.float32)

    def __call__(self, logits: torch.Tensor, index: np.ndarray) -> torch.Tensor:
        logits, labels = logits.float(), self.labels[index].to(logits.device)
        if self.row_weights is not None:
            return self._weighted(logits, labels, self.row_weights[index].to(logits.device))
        if self.values:
            return torch.nn.functional.mse_loss(logits.squeeze(-1), labels.float())
        if self.multi_hot:
            return torch.nn.functional.binary_cross_entropy_with_logits(logits, labels.float())
        weights = None if self.weights is None else self.weights.to(logits.device)
        if self.focal_gamma is None:
            return torch.nn.functional.cross_entropy(logits, labels, weight=weights)
        # Focal loss (Lin et al. 2017): (1 - p_t)^gamma down-weights the easy, mostly majority rows.
        log_p = torch.log_softmax(logits, dim=-1).gather(1, labels[:, None]).squeeze(1)
        loss = -((1 - log_p.exp()) ** self.focal_gamma) * log_p
        if weights is not None:
            loss = loss * weights[labels]
        return loss.mean()

    def _weighted(self, logits: torch.Tensor, labels: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """The row-weighted mean loss (class weights, when set, multiply in)."""
        if self.values:
            loss = (logits.squeeze(-1) - labels.float()) ** 2
        elif self.multi_hot:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels.float(),
                                                                        reduction="none").mean(dim=-1)
        else:
            loss = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
            if self.weights is not None:
                rows = rows * self.weights.to(logits.device)[labels]
        return (loss * rows).sum() / rows.sum().clamp_min(1e-12)


def eval_metrics(outputs: np.ndarray, labels: np.ndarray, task: str,
                  label_names: list[str] | None) -> dict[str, Any]:
    metrics = compute_metrics(task, labels, outputs, label_names)
    if task_of(task).answer == "labels":
        metrics["loss"] = bce_loss(labels, outputs)
    elif task_of(task).scores_classes:
        picked = outputs[np.arange(len(labels)), labels]
        metrics["loss"] = float(-np.mean(np.log(np.clip(picked, 1e-12, None))))
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) or v is None}


def tracked_metric(cfg: TrainConfig, task: str) -> tuple[str, str]:
    """The validation metric that picks the best weights, and whether higher is better."""
    es = cfg.early_stopping
    name = es.metric if es and es.metric else primary_metric(task)[0]
    return name, (es.mode if es and es.mode else metric_mode(name))


def check_metric(cfg: TrainConfig, validation: Examples, task: str, label_names: list[str] | None) -> None:
    """Raise a ConfigError when the tracked metric is not one this task computes."""
    name = tracked_metric(cfg, task)[0]
    n, k = len(validation.labels), len(label_names or [])
    spec = task_of(task)
    if spec.validation_metrics is not None:
        known: dict[str, Any] = dict.fromkeys(spec.validation_metrics)
    else:
        dummy = np.zeros(n) if spec.answer == "value" else np.full((n, k), 1.0 / max(k, 1))
        if spec.answer == "labels":
            dummy = np.full((n, k), 0.5)
        known = eval_metrics(dummy, validation.labels, task, label_names)
    if name not in known:
        raise ConfigError(f"train.early_stopping.metric '{name}' is not a validation metric of this "
                          f"task; choose one of: {', '.join(sorted(known))}")
