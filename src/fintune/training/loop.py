"""The one training loop shared by every strategy.

AdamW with warmup then linear decay, gradient clipping, optional class weights, dynamic
padding with length-grouped batches, bf16 autocast where the hardware supports it,
evaluation each epoch or every N steps, early stopping that restores the best weights,
and atomic checkpoints from which a killed run resumes to the same final result.

:func:`train` builds a :class:`Trainer` (its state, optimizer and checkpoints) and runs it;
the loss and metrics live in :mod:`~fintune.training.objectives`, the optimizers in
:mod:`~fintune.training.optim`, the state, result and logs in :mod:`~fintune.training.history`.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fintune.config import TrainConfig
from fintune.data import Examples
from fintune.data.batching import collate, epoch_batches, lengths_of
from fintune.errors import ConfigError, TrainingStopped
from fintune.models.inference import Inputs, autocast, model_outputs, resolve_precision
from fintune.strategies import Strategy, count_parameters
from fintune.tasks import task_of
from fintune.training import checkpoint
from fintune.training.distributed import Distributed, world_size
from fintune.training.history import (  # noqa: F401  (the run folder's file names, read through this module)
    BEST, CHECKPOINT, HISTORY, STEPS, LoopState, TrainResult, append_record, read_history, truncate_history,
)
from fintune.training.objectives import (  # noqa: F401  (recipes name these types through this module)
    Batcher, Evaluator, Objective, Supervised, check_metric, class_weights, eval_metrics, tracked_metric,
)
from fintune.training.optim import adamw, sgd, with_head_lr
from fintune.training.packing import plan_packing
from fintune.training.privacy import DPSGD
from fintune.training.progress import TrainProgress


class StopRequest:
    """Set by SIGTERM or SIGINT while training: the loop checkpoints after the step and stops.

    Handlers are installed from the main thread only (Python's rule) and restored on exit.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._request)
        return self

    def _request(self, *_: Any) -> None:
        self.requested = True

    def __exit__(self, *_: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class Trainer:
    """One training run of ``model``: its schedule, optimizer, state and checkpoints.

    Built in the order a resumed run depends on (the model on its device, the optimizer, the
    checkpoint or the seed); :meth:`run` trains in place and leaves the best (or last) weights.
    """

    def __init__(self, model: nn.Module, strategy: Strategy, inputs: Inputs, train_data: Examples,
                 validation: Examples, *, task: str, label_names: list[str] | None, cfg: TrainConfig, seed: int,
                 work_dir: Path, show_progress: bool, objective: Objective | None, evaluator: Evaluator | None,
                 batcher: Batcher | None, on_evaluate: Callable[[int, dict[str, Any]], None] | None) -> None:
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        self.dist = Distributed() if world_size() > 1 else None
        if self.dist is not None and cfg.privacy.dp is not None:
            raise ConfigError("train.privacy.dp runs in one process: Poisson sampling and the accountant are per run")
        self.is_main = self.dist is None or self.dist.is_main
        self.device = self.dist.device if self.dist else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model.to(self.device)
        self.model, self.strategy, self.cfg, self.seed, self.task = model, strategy, cfg, seed, task
        self.label_names, self.work_dir, self.train_rows = label_names, work_dir, len(train_data)
        self.evaluator, self.on_evaluate, self.validation = evaluator, on_evaluate, validation
        self.dp = DPSGD(cfg.privacy.dp, len(train_data), cfg.batch_size, cfg.epochs, cfg.max_steps) \
            if cfg.privacy.dp else None
        self.dtype = None if self.dp else resolve_precision(cfg.precision, self.device)  # DP: fp32 per-example grads
        self.metric_name, self.mode = tracked_metric(cfg, task)
        enc_train, self.enc_val = inputs(train_data), inputs(validation)
        self.lengths, self.pad_id = lengths_of(enc_train), inputs.pad_id
        self.objective = objective or self._supervised(train_data)
        self.packing = plan_packing(cfg.packing, model, strategy, enc_train, self.objective,
                                    width=getattr(inputs, "max_length", 1),  # a probe's vector inputs have none
                                    pad_id=self.pad_id, custom_batches=batcher is not None, dp=self.dp is not None,
                                    distributed=self.dist is not None, grouped=cfg.group_by_length)
        self.batcher = batcher or (self.packing.batcher if self.packing else self._collator(enc_train))
        if self.packing is not None:
            self.objective = self.packing.objective
        # Oversampling draws the epoch's rows from the labels; regression and soft targets do not.
        self.sample_labels = train_data.labels if cfg.oversample and task_of(task).scores_classes else None
        self.per_epoch = (self.dp.steps_per_epoch if self.dp else
                          -(-len(self._epoch_batches(0)) // cfg.grad_accum_steps))
        self.total_steps = (self.per_epoch * cfg.epochs if cfg.max_steps is None
                            else min(cfg.max_steps, self.per_epoch * cfg.epochs))
        self._build_optimizer()
        self.trainable, self.total = count_parameters(model)
        self.state, self.resumed_from = LoopState(), None
        self.ckpt_path, self.best_path = work_dir / CHECKPOINT, work_dir / BEST
        self.show_progress = show_progress

    def _collator(self, encoded: dict[str, Any]) -> Batcher:
        def batcher(part: np.ndarray, epoch: int, step: int) -> tuple[dict[str, torch.Tensor], Any]:
            return collate(encoded, part, self.pad_id), part
        return batcher

    def _supervised(self, train_data: Examples) -> Objective:
        cfg = self.cfg
        weights = (class_weights(train_data.labels, len(self.label_names or []))
                   if cfg.class_weights and task_of(self.task).scores_classes else None)
        return Supervised(train_data.labels, self.task, weights, focal_gamma=cfg.focal_gamma if cfg.loss == "focal"
                          else None, row_weights=train_data.weights)

    def _epoch_batches(self, epoch: int) -> list[np.ndarray]:
        if self.dp:
            return self.dp.batches(self.seed, epoch)
        return epoch_batches(self.lengths, self.cfg.batch_size, self.seed, epoch, self.cfg.group_by_length,
                             self.sample_labels, self.cfg.batch_tokens)

    def _build_optimizer(self) -> None:
        cfg, model = self.cfg, self.model
        warmup = cfg.warmup_steps if cfg.warmup_steps is not None else int(cfg.warmup_fraction * self.total_steps)
        groups = self.strategy.param_groups(model, cfg.lr, cfg.weight_decay)
        if cfg.head_lr is not None:
            groups = with_head_lr(groups, model, cfg.head_lr)
        self.optimizer = (adamw if cfg.optimizer == "adamw" else sgd)(groups, cfg.lr, self.device)
        self.scheduler = self.strategy.schedule(self.optimizer, self.total_steps, warmup)
        # DP-SGD trains through a wrapper with per-example gradients and a noisy optimizer; the
        # plain ``model`` and ``optimizer`` stay what is checkpointed and returned.
        self.forward, self.stepper = self.dp.wrap(model, self.optimizer) if self.dp else (model, self.optimizer)
        if self.packing is not None:  # the model on packed sequences (per row, or per packed position)
            self.forward = self.packing.forward
        if cfg.compile:  # the same module, traced and compiled on its first batches; weights stay shared
            self.forward = torch.compile(self.forward, dynamic=True)
        if self.dist is not None:
            self.forward, self.stepper = self.dist.prepare(model, self.optimizer)

    def restore(self, resume: bool) -> None:
        """Continue from the checkpoint (``resume`` and one exists), else start from the seed."""
        if resume and self.ckpt_path.exists():
            saved = checkpoint.load(self.ckpt_path)
            self.model.load_state_dict(saved["model"])
            self.optimizer.load_state_dict(saved["optimizer"])
            self.scheduler.load_state_dict(saved["scheduler"])
            self.state = LoopState(**saved["state"])
            torch.set_rng_state(saved["rng"])
            if self.dp:
                self.dp.restore(self.state.dp_steps)
            self.resumed_from = self.state.global_step
            if self.is_main:
                truncate_history(self.work_dir / HISTORY, self.state.global_step)
                truncate_history(self.work_dir / STEPS, self.state.global_step)
        else:
            torch.manual_seed(self.seed)
            if self.is_main:
                (self.work_dir / HISTORY).unlink(missing_ok=True)
                (self.work_dir / STEPS).unlink(missing_ok=True)

    def save_checkpoint(self) -> None:
        """Weights, optimizer, schedule, state and RNG, atomically (the first process writes)."""
        if self.is_main:
            checkpoint.atomic_save({
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "state": asdict(self.state), "rng": torch.get_rng_state(),
            }, self.ckpt_path)

    def evaluate(self) -> bool:
        """Evaluate, log, track the best weights; True when early stopping says stop."""
        state, cfg, started = self.state, self.cfg, time.perf_counter()
        if self.evaluator is not None:
            metrics = self.evaluator(self.model, self.enc_val, self.dtype)
        else:
            outputs = model_outputs(self.model, self.enc_val, cfg.eval_batch_size, self.task, self.pad_id, self.dtype)
            metrics = eval_metrics(outputs, self.validation.labels, self.task, self.label_names)
        self.model.train()
        value = metrics[self.metric_name]
        best = state.best_metric
        improved = best is None or (value > best if self.mode == "max" else value < best)
        if improved:
            state.best_metric, state.best_step, state.bad_evals = float(value), state.global_step, 0
            if cfg.early_stopping and self.is_main:
                checkpoint.atomic_save(self.model.state_dict(), self.best_path)
        else:
            state.bad_evals += 1
        record = {"step": state.global_step, "epoch": round(state.global_step / self.per_epoch, 4),
                  "train_loss": state.loss_sum / max(state.loss_count, 1),
                  "lr": self.scheduler.get_last_lr()[0], "validation": metrics}
        state.loss_sum, state.loss_count = 0.0, 0
        if self.is_main:
            append_record(self.work_dir / HISTORY, record)
        state.eval_seconds += time.perf_counter() - started
        self.progress.evaluated(state.global_step, self.metric_name, float(value), improved)
        if self.on_evaluate is not None:
            self.on_evaluate(state.global_step, metrics)
        return bool(cfg.early_stopping and state.bad_evals >= cfg.early_stopping.patience)

    def step(self, group: list[np.ndarray]) -> tuple[int, float]:
        """One optimizer step over a group of micro-batches; the rows seen and the loss."""
        rows = sum(len(index) for index in group)
        self.tokens_this_run += sum(self.lengths[i] for index in group for i in index)
        loss_value = 0.0
        for index in group:
            # Several processes: this one trains on its share of the global batch.
            part, share = self.dist.share(index) if self.dist else (index, 1.0)
            batch, key = self.batcher(part, self.state.epoch, self.state.global_step)
            batch = {k: v.to(self.device) for k, v in batch.items()}
            with autocast(self.device, self.dtype):
                logits = self.forward(**batch).logits
            # Weighted by rows, so the step's gradient is that of one batch of all its rows.
            loss = self.objective(logits, key) * (len(index) / rows) * share
            loss.backward()
            loss_value += loss.item()
        if self.cfg.max_grad_norm and self.dp is None:  # DP-SGD clips each example's gradient instead
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.max_grad_norm)
        self.stepper.step()
        self.scheduler.step()
        self.stepper.zero_grad(set_to_none=True)
        if self.dp:
            self.dp.step()
            self.state.dp_steps += 1
        state = self.state
        state.global_step, state.batch_in_epoch = state.global_step + 1, state.batch_in_epoch + 1
        state.loss_sum, state.loss_count, state.samples_seen = state.loss_sum + loss_value, state.loss_count + 1, \
            state.samples_seen + rows
        return rows, loss_value

    def run(self) -> TrainResult:
        """Train to the end (epochs, max_steps or early stopping); checkpoint and stop on a signal."""
        cfg, state = self.cfg, self.state
        self.model.train()
        self.progress = TrainProgress(self.total_steps, state.global_step, enabled=self.show_progress and self.is_main)
        # Seconds are banked into the state at each checkpoint, so a resumed run reports the
        # time of all its processes together.
        self.start = banked_at = time.perf_counter()
        self.eval_at_start, self.samples_this_run, self.tokens_this_run = state.eval_seconds, 0, 0
        stop = StopRequest()
        with self.progress, stop:
            while state.epoch < cfg.epochs and state.global_step < self.total_steps and not state.stopped_early:
                batches = self._epoch_batches(state.epoch)
                # One optimizer step per group of grad_accum_steps micro-batches.
                steps = [batches[i:i + cfg.grad_accum_steps] for i in range(0, len(batches), cfg.grad_accum_steps)]
                for group in steps[state.batch_in_epoch:]:
                    self.strategy.on_step(self.model, state.global_step, self.total_steps)
                    self._log_step(*self.step(group))
                    end_of_epoch = state.batch_in_epoch == len(steps)
                    if end_of_epoch:
                        state.epoch, state.batch_in_epoch = state.epoch + 1, 0
                    due = (state.global_step % cfg.eval_every == 0) if cfg.eval_every else end_of_epoch
                    if due or state.global_step == self.total_steps:
                        state.stopped_early = self.evaluate()
                    if stop.requested or (cfg.checkpoint_every and state.global_step % cfg.checkpoint_every == 0):
                        now = time.perf_counter()
                        state.train_seconds, banked_at = state.train_seconds + now - banked_at, now
                        self.save_checkpoint()
                    if stop.requested:
                        self._stopped()
                    if state.stopped_early or state.global_step >= self.total_steps:
                        break
        return self._finish(banked_at)

    def _log_step(self, rows: int, loss: float) -> None:
        state = self.state
        self.samples_this_run += rows
        speed = self.samples_this_run / max(time.perf_counter() - self.start, 1e-9)
        self.progress.step(state.global_step, loss, state.epoch + 1, speed)
        if self.is_main:
            append_record(self.work_dir / STEPS, {"step": state.global_step, "total_steps": self.total_steps,
                                                  "epoch": state.epoch + 1, "loss": loss,
                                                  "lr": self.scheduler.get_last_lr()[0],
                                                  "samples_per_s": round(speed, 2)})

    def _stopped(self) -> None:
        if self.dist is not None:
            self.dist.close()
        raise TrainingStopped(f"training stopped at step {self.state.global_step} of {self.total_steps}; the "
                              f"checkpoint in {self.work_dir} resumes it (fintune train CONFIG --resume)")

    def _finish(self, banked_at: float) -> TrainResult:
        """Best weights back in the model, the processes closed, the result."""
        state, end, in_sync = self.state, time.perf_counter(), None
        if self.dist is not None:
            in_sync = self.dist.in_sync(self.model)
            self.dist.barrier()  # the main process has written best.pt
        if self.dp:
            self.dp.close(self.forward)
        state.train_seconds += end - banked_at
        # Throughput counts training steps only: evaluation time is reported on its own.
        step_seconds = end - self.start - (state.eval_seconds - self.eval_at_start)
        if self.cfg.early_stopping and self.best_path.exists():
            self.model.load_state_dict(checkpoint.load(self.best_path))
        if self.dist is not None:
            # The DDP wrapper and optimizer go first: gloo can abort at exit when the group ends under them.
            del self.forward, self.stepper, self.optimizer, self.scheduler
            self.dist.close()
        return TrainResult(
            metric=self.metric_name, train_rows=self.train_rows, best_metric=state.best_metric,
            best_step=state.best_step, global_step=state.global_step, stopped_early=state.stopped_early,
            train_seconds=round(state.train_seconds - state.eval_seconds, 3),
            eval_seconds=round(state.eval_seconds, 3),
            train_samples_per_s=round(self.samples_this_run / max(step_seconds, 1e-9), 3),
            train_tokens_per_s=round(self.tokens_this_run / max(step_seconds, 1e-9), 1), packed=self.packing is not None,
            trainable_params=self.trainable, total_params=self.total,
            precision="bf16" if self.dtype is torch.bfloat16 else "fp32", resumed_from_step=self.resumed_from,
            privacy=self.dp.report(state.dp_steps) if self.dp else None,
            history=read_history(self.work_dir / HISTORY),
            processes=self.dist.world if self.dist else 1, ranks_in_sync=in_sync,
        )


def train(model: nn.Module, strategy: Strategy, inputs: Inputs, train_data: Examples, validation: Examples, *,
          task: str, label_names: list[str] | None, cfg: TrainConfig, seed: int, work_dir: Path,
          resume: bool = False, show_progress: bool = True, objective: Objective | None = None,
          on_evaluate: Callable[[int, dict[str, Any]], None] | None = None, evaluator: Evaluator | None = None,
          batcher: Batcher | None = None) -> TrainResult:
    """Train ``model`` in place; on return it holds the best (or last) weights.

    ``objective`` replaces the supervised loss (distillation and generation use this);
    ``evaluator`` replaces the validation metrics (generation: the loss on the answers);
    ``on_evaluate`` sees every validation result (the hyperparameter search prunes from it);
    ``batcher`` replaces padding rows into a batch (pretraining masks tokens there).
    """
    trainer = Trainer(model, strategy, inputs, train_data, validation, task=task, label_names=label_names, cfg=cfg,
                      seed=seed, work_dir=work_dir, show_progress=show_progress, objective=objective,
                      evaluator=evaluator, batcher=batcher, on_evaluate=on_evaluate)
    trainer.restore(resume)
    return trainer.run()
