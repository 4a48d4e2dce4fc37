"""Membership inference audit: can an attacker tell training rows from unseen ones?

The loss-threshold attack (Yeom et al. 2018): a row whose loss under the model is low was
probably trained on. The audit scores equal numbers of training rows ("members") and
held-out rows of the same distribution ("non-members") by their per-row loss and reports
the ROC-AUC of -loss as a membership score (0.5: the model leaks nothing this attack can
see; 1.0: every member is recognized) and the attacker's advantage, max(TPR - FPR).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from fintune.data import Examples
from fintune.tasks import task_of


def per_row_loss(model: Any, examples: Examples, batch_size: int = 64) -> np.ndarray:
    """Cross-entropy of the true class (classification) or squared error (regression)."""
    out = model.outputs(examples, batch_size)
    if task_of(model.task).answer == "value":
        return (out - examples.labels) ** 2
    picked = out[np.arange(len(examples)), examples.labels]
    return -np.log(np.clip(picked, 1e-12, None))


def membership_inference(model: Any, members: Examples, non_members: Examples, *, max_rows: int = 2000,
                         seed: int = 0) -> dict[str, Any]:
    """The loss-threshold attack on a balanced sample of members and non-members."""
    rng = np.random.default_rng(seed)
    n = min(len(members), len(non_members), max_rows)
    if n < 10:
        raise ValueError(f"a membership audit needs at least 10 rows on each side, got {n}")
    inside = members.take(np.sort(rng.choice(len(members), n, replace=False)))
    outside = non_members.take(np.sort(rng.choice(len(non_members), n, replace=False)))
    loss_in, loss_out = per_row_loss(model, inside), per_row_loss(model, outside)
    truth = np.r_[np.ones(n), np.zeros(n)]
    score = -np.r_[loss_in, loss_out]
    fpr, tpr, _ = roc_curve(truth, score)
    return {"attack": "loss_threshold", "rows_each": n, "auc": float(roc_auc_score(truth, score)),
            "advantage": float(np.max(tpr - fpr)), "member_loss_mean": float(loss_in.mean()),
            "non_member_loss_mean": float(loss_out.mean())}
