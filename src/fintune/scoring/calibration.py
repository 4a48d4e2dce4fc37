"""Calibration: expected calibration error and temperature scaling (Guo et al. 2017).

A fine-tuned transformer is usually over-confident: its 0.95 is right far less than 95% of
the time. Temperature scaling divides the logits by one number T fitted on validation
data; it changes no argmax (so no accuracy), only how far the probabilities can be trusted,
which is what a credit limit or a capital charge is computed from.
"""

from __future__ import annotations

import numpy as np
import torch

ECE_BINS = 15


def confidence_bins(y_true: np.ndarray, probs: np.ndarray, bins: int = ECE_BINS
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Top-label confidence and correctness of each row, its equal-width bin, and the bin edges:
    what the ECE and the reliability diagram both read, so they always use the same bins."""
    probs = np.asarray(probs, dtype=np.float64)
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(y_true).astype(int)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    return confidence, correct, which, edges


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, bins: int = ECE_BINS) -> float:
    """Top-label ECE: the gap between confidence and accuracy, averaged over equal-width bins
    weighted by how many rows fall in each."""
    confidence, correct, which, _ = confidence_bins(y_true, probs, bins)
    ece = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T): the same as dividing the logits by T, from probabilities alone."""
    logits = np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, None)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return (out / out.sum(axis=1, keepdims=True)).astype(np.float32)


def fit_temperature(y_true: np.ndarray, probs: np.ndarray) -> float:
    """The T > 0 that minimizes the negative log-likelihood of ``y_true`` (LBFGS on log T)."""
    log_p = torch.log(torch.as_tensor(np.asarray(probs, dtype=np.float64)).clamp_min(1e-12))
    y = torch.as_tensor(np.asarray(y_true).astype(np.int64))
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(log_p / log_t.exp(), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    temperature = float(log_t.detach().exp())
    # Guard against a degenerate fit (one class, separable data): keep T within sane bounds.
    return float(np.clip(temperature, 0.05, 20.0))
