"""Calibration: expected calibration error and temperature scaling (Guo et al. 2017).

A fine-tuned transformer is usually over-confident: its 0.95 is right far less than 95% of
the time. Temperature scaling divides the logits by one number T fitted on validation
data; it changes no argmax (so no accuracy), only how far the probabilities can be trusted,
which is what a credit limit or a capital charge is computed from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

ECE_BINS = 15
# Bounds of a sane temperature: a fit at either one is a degenerate fit (one class, separable
# or tiny data; at 20 every probability is near uniform), never applied.
T_MIN, T_MAX = 0.05, 20.0
# Out-of-fold validation ECE must fall by this much (absolute) for the temperature to be kept:
# on 60-150 validation rows the ECE of one fit moves by a few points by chance.
ECE_MARGIN = 0.005
FOLDS = 5
MIN_ROWS = 40  # fewer validation rows than this: 8 per fold, too few to judge a temperature


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
    # Guard against a degenerate fit (one class, separable data): keep T within sane bounds;
    # choose_temperature refuses a fit that reaches one.
    return float(np.clip(temperature, T_MIN, T_MAX))


def negative_log_likelihood(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Mean -log p(true class)."""
    p = np.asarray(probs, dtype=np.float64)[np.arange(len(y_true)), np.asarray(y_true).astype(int)]
    return float(-np.log(np.clip(p, 1e-12, None)).mean())


@dataclass
class TemperatureChoice:
    """Whether temperature scaling is applied, and the evidence: validation ECE and NLL without
    it and, out of fold, with it (each fold's rows scaled by a T fitted on the other folds, so
    the fit is not judged on the rows it was fitted to)."""

    temperature: float  # applied: the fitted T, or 1.0 when not kept
    fitted: float
    applied: bool
    reason: str
    validation_ece: float
    ece_after_out_of_fold: float | None
    nll_before: float
    nll_after_out_of_fold: float | None
    at_bound: bool

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def choose_temperature(y_true: np.ndarray, probs: np.ndarray, seed: int = 0) -> TemperatureChoice:
    """Fit T on all validation rows, and keep it only when it helps out of fold: the
    out-of-fold ECE falls by :data:`ECE_MARGIN` and the out-of-fold NLL does not rise. A fit at
    a bound, or too few rows to judge, keeps T = 1; ``reason`` says which."""
    y = np.asarray(y_true).astype(int)
    probs = np.asarray(probs, dtype=np.float64)
    ece, nll = expected_calibration_error(y, probs), negative_log_likelihood(y, probs)
    fitted = fit_temperature(y, probs)
    at_bound = not T_MIN < fitted < T_MAX
    base = {"fitted": fitted, "validation_ece": ece, "nll_before": nll, "at_bound": at_bound}
    if len(y) < MIN_ROWS:
        return TemperatureChoice(1.0, applied=False, ece_after_out_of_fold=None, nll_after_out_of_fold=None,
                                 reason=f"not applied: {len(y)} validation rows are too few to judge a "
                                        f"temperature (at least {MIN_ROWS})", **base)
    rng = np.random.default_rng(seed)
    fold = rng.permutation(len(y)) % FOLDS
    scaled = np.empty_like(probs)
    for k in range(FOLDS):
        inside, outside = fold != k, fold == k
        scaled[outside] = apply_temperature(probs[outside], fit_temperature(y[inside], probs[inside]))
    ece_oof, nll_oof = expected_calibration_error(y, scaled), negative_log_likelihood(y, scaled)
    evidence = {**base, "ece_after_out_of_fold": ece_oof, "nll_after_out_of_fold": nll_oof}
    if at_bound:
        reason = (f"not applied: the fit reached its bound (T = {fitted:.3g}, allowed {T_MIN}-{T_MAX}), a "
                  "degenerate fit (one class predicted, separable or too little validation data)")
    elif ece_oof > ece - ECE_MARGIN:
        reason = (f"not applied: out-of-fold validation ECE {ece:.4f} -> {ece_oof:.4f} does not fall by "
                  f"{ECE_MARGIN}")
    elif nll_oof > nll:
        reason = f"not applied: out-of-fold validation NLL rises ({nll:.4f} -> {nll_oof:.4f})"
    else:
        return TemperatureChoice(fitted, applied=True, reason=f"applied: out-of-fold validation ECE {ece:.4f} -> "
                                 f"{ece_oof:.4f}, NLL {nll:.4f} -> {nll_oof:.4f}", **evidence)
    return TemperatureChoice(1.0, applied=False, reason=reason, **evidence)


def as_two_class(p: np.ndarray) -> np.ndarray:
    """One label's sigmoid probabilities as (1 - p, p): a softmax temperature on these two
    columns is exactly a temperature on that label's logit, sigmoid(z / T)."""
    p = np.asarray(p, dtype=np.float64)
    return np.stack([1.0 - p, p], axis=1)


def apply_label_temperatures(probs: np.ndarray, temperatures: list[float]) -> np.ndarray:
    """Each label's probability with its own temperature: sigmoid(logit(p_j) / T_j)."""
    p = np.asarray(probs, dtype=np.float64)
    return np.stack([apply_temperature(as_two_class(p[:, j]), t)[:, 1] for j, t in enumerate(temperatures)],
                    axis=1).astype(np.float32)


def choose_label_temperatures(y_true: np.ndarray, probs: np.ndarray, seed: int = 0) -> list[TemperatureChoice]:
    """Multi-label calibration: one temperature per label, each kept by the rule of
    :func:`choose_temperature` on that label alone (a rare label with a degenerate fit keeps
    T = 1 while the others are scaled)."""
    truth = (np.asarray(y_true) >= 0.5).astype(int)
    p = np.asarray(probs, dtype=np.float64)
    return [choose_temperature(truth[:, j], as_two_class(p[:, j]), seed) for j in range(p.shape[1])]


def label_ece(y_true: np.ndarray, probs: np.ndarray) -> float:
    """The mean over labels of each label's ECE (as the multi-label metrics report it)."""
    truth, p = (np.asarray(y_true) >= 0.5).astype(int), np.asarray(probs, dtype=np.float64)
    return float(np.mean([expected_calibration_error(truth[:, j], as_two_class(p[:, j])) for j in range(p.shape[1])]))


def calibrated(probs: np.ndarray, temperature: float | None, label_temperatures: list[float] | None) -> np.ndarray:
    """A model's outputs after its calibration: one softmax temperature (classes) or one per
    label (multi-label); unchanged where neither was kept."""
    if temperature is not None:
        probs = apply_temperature(probs, temperature)
    if label_temperatures is not None:
        probs = apply_label_temperatures(probs, label_temperatures)
    return probs
