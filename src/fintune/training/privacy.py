"""Differentially private training: DP-SGD (Abadi et al. 2016) with Opacus.

Each step samples every training row independently with probability q = batch_size / n
(Poisson sampling, what the accountant's bound assumes), computes per-example gradients
(Opacus ``GradSampleModule``), clips each to ``max_grad_norm`` and adds Gaussian noise
(``DPOptimizer``). The noise multiplier is the smallest that keeps the planned steps within
(epsilon, delta) under the RDP accountant; the epsilon actually spent (less when early
stopping ends the run sooner) is recorded with the run.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from torch import nn
from torch.optim import Optimizer

from fintune.config import DPConfig
from fintune.errors import needs

# Opacus hooks the backward pass of every layer; with frozen embeddings the first layer's
# inputs need no gradient and torch says so on every step. Expected here, so not shown.
warnings.filterwarnings("ignore", message="Full backward hook is firing when gradients are computed")


class DPSGD:
    """Sampling, noise and accounting of one private training run."""

    def __init__(self, cfg: DPConfig, n_rows: int, batch_size: int, epochs: int, max_steps: int | None) -> None:
        with needs("privacy", "DP-SGD (train.privacy.dp)"):
            from opacus.accountants import RDPAccountant
            from opacus.accountants.utils import get_noise_multiplier

        self.cfg, self.n_rows = cfg, n_rows
        self.sample_rate = min(1.0, batch_size / n_rows)
        self.expected_batch = batch_size
        self.steps_per_epoch = max(1, round(1 / self.sample_rate))
        planned = self.steps_per_epoch * epochs
        self.planned_steps = min(planned, max_steps) if max_steps else planned
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "optimal order is the largest alpha": a looser bound, still valid
            self.noise_multiplier = get_noise_multiplier(target_epsilon=cfg.epsilon, target_delta=cfg.delta,
                                                         sample_rate=self.sample_rate, steps=self.planned_steps,
                                                         accountant="rdp")
        self.accountant = RDPAccountant()

    def wrap(self, model: nn.Module, optimizer: Optimizer) -> tuple[nn.Module, Optimizer]:
        """The model with per-example gradients, and the optimizer that clips and adds noise.
        Parameters stay those of ``model``: saving and loading use the plain module.

        Embedding tables are frozen, as in most DP fine-tuning (Li et al. 2022): a per-example
        gradient of a 30,000-row table costs the whole table per example, and HF encoders share
        one position-id row across the batch, which per-example gradients cannot split.
        """
        from opacus import GradSampleModule
        from opacus.optimizers import DPOptimizer

        for module in model.modules():
            if isinstance(module, nn.Embedding):
                module.requires_grad_(False)
        private = GradSampleModule(model, loss_reduction="mean")
        return private, DPOptimizer(optimizer, noise_multiplier=self.noise_multiplier,
                                    max_grad_norm=self.cfg.max_grad_norm, expected_batch_size=self.expected_batch)

    def batches(self, seed: int, epoch: int) -> list[np.ndarray]:
        """One epoch of Poisson-sampled batches, the same for the same seed and epoch (resume).
        An empty draw (probability (1-q)^n, about e^-batch_size) is skipped."""
        rng = np.random.default_rng([seed, epoch, 7919])
        draws = (np.flatnonzero(rng.random(self.n_rows) < self.sample_rate) for _ in range(self.steps_per_epoch))
        return [index for index in draws if len(index)]

    def step(self) -> None:
        self.accountant.step(noise_multiplier=self.noise_multiplier, sample_rate=self.sample_rate)

    def restore(self, steps: int) -> None:
        """The accountant of a resumed run: ``steps`` noisy steps already taken."""
        self.accountant.history = [(self.noise_multiplier, self.sample_rate, steps)] if steps else []

    def spent(self) -> float:
        if not self.accountant.history:
            return 0.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(self.accountant.get_epsilon(delta=self.cfg.delta))

    def report(self, steps: int) -> dict[str, Any]:
        """What the run records: the budget, what it spent, and the mechanism's settings."""
        return {"dp": True, "target_epsilon": self.cfg.epsilon, "epsilon_spent": round(self.spent(), 4),
                "delta": self.cfg.delta, "max_grad_norm": self.cfg.max_grad_norm,
                "noise_multiplier": round(self.noise_multiplier, 4), "sample_rate": round(self.sample_rate, 6),
                "steps": steps, "planned_steps": self.planned_steps, "accountant": "rdp"}

    @staticmethod
    def close(private: nn.Module) -> None:
        """Remove Opacus' hooks and per-example gradients: the model is a plain module again."""
        private._close()
