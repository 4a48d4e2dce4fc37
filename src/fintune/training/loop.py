"""The one training loop shared by every strategy.

AdamW with warmup then linear decay, gradient clipping, optional class weights, dynamic
padding with length-grouped batches, bf16 autocast where the hardware supports it,
evaluation each epoch or every N steps, early stopping that restores the best weights,
and atomic checkpoints from which a killed run resumes to the same final result.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fintune.config import TrainConfig
from fintune.data import Examples
from fintune.errors import ConfigError, TrainingStopped
from fintune.files import write_text
from fintune.scoring.metrics import compute_metrics, metric_mode, primary_metric
from fintune.models.inference import Inputs, autocast, model_outputs, resolve_precision
from fintune.strategies import Strategy, count_parameters
from fintune.strategies.base import head_parameters
from fintune.tasks import task_of
from fintune.training import checkpoint
from fintune.data.batching import collate, epoch_batches, lengths_of
from fintune.training.distributed import Distributed, world_size
from fintune.training.progress import TrainProgress
from fintune.training.privacy import DPSGD

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"
HISTORY = "metrics.jsonl"
STEPS = "steps.jsonl"  # one line per optimizer step: what live progress and loss curves read


@dataclass
class LoopState:
    """Everything besides tensors that a resumed run needs to continue exactly."""

    global_step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # optimizer steps taken in the current epoch
    best_metric: float | None = None
    best_step: int = 0
    bad_evals: int = 0
    stopped_early: bool = False
    loss_sum: float = 0.0
    loss_count: int = 0
    samples_seen: int = 0
    train_seconds: float = 0.0  # wall time of the loop, evaluation included, all processes together
    eval_seconds: float = 0.0
    dp_steps: int = 0  # noisy steps taken (DP-SGD), for the privacy accountant of a resumed run


@dataclass
class TrainResult:
    """What the loop reports back to the recipe."""

    metric: str
    train_rows: int
    best_metric: float | None
    best_step: int
    global_step: int
    stopped_early: bool
    train_seconds: float
    eval_seconds: float
    train_samples_per_s: float
    trainable_params: int
    total_params: int
    precision: str
    resumed_from_step: int | None = None
    privacy: dict[str, Any] | None = None  # DP-SGD: budget, epsilon spent, noise
    processes: int = 1
    ranks_in_sync: bool | None = None  # several processes: identical weights on every rank at the end
    history: list[dict[str, Any]] = field(default_factory=list)


def _class_weights(labels: np.ndarray, num_labels: int) -> torch.Tensor:
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
        self.focal_gamma = focal_gamma
        # data.weight_column: each row's share of the batch loss (a weak label's confidence).
        self.row_weights = None if row_weights is None else torch.tensor(row_weights, dtype=torch.float32)

    def __call__(self, logits: torch.Tensor, index: np.ndarray) -> torch.Tensor:
        logits, labels = logits.float(), self.labels[index].to(logits.device)
        if self.row_weights is not None:
            return self._weighted(logits, labels, self.row_weights[index].to(logits.device))
        if self.values:
            return torch.nn.functional.mse_loss(logits.squeeze(-1), labels.float())
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
        else:
            loss = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
            if self.weights is not None:
                rows = rows * self.weights.to(logits.device)[labels]
        return (loss * rows).sum() / rows.sum().clamp_min(1e-12)


def _eval_metrics(outputs: np.ndarray, labels: np.ndarray, task: str,
                  label_names: list[str] | None) -> dict[str, Any]:
    metrics = compute_metrics(task, labels, outputs, label_names)
    if task_of(task).scores_classes:
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
        known = _eval_metrics(dummy, validation.labels, task, label_names)
    if name not in known:
        raise ConfigError(f"train.early_stopping.metric '{name}' is not a validation metric of this "
                          f"task; choose one of: {', '.join(sorted(known))}")


def with_head_lr(groups: list[dict[str, Any]], model: nn.Module, head_lr: float) -> list[dict[str, Any]]:
    """Give the head's parameters their own learning rate: a fresh head (fusion, MLP) learns
    from scratch and needs a far larger step than the pretrained encoder under it."""
    head = {id(p) for _, p in head_parameters(model)}
    out = []
    for group in groups:
        for params, lr in (([p for p in group["params"] if id(p) in head], head_lr),
                           ([p for p in group["params"] if id(p) not in head], group["lr"])):
            if params:
                out.append({**group, "params": params, "lr": lr})
    return out


def adamw(groups: list[dict[str, Any]], lr: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW with the fused kernel where it applies (CPU and CUDA, floating-point parameters):
    +9% samples/s for MiniLM on 2 CPU cores (benchmarks/speed_levers.py); the same update."""
    params = [p for group in groups for p in group["params"]]
    fused = device.type in ("cpu", "cuda") and all(p.is_floating_point() and p.device.type == device.type
                                                    for p in params)
    return torch.optim.AdamW(groups, lr=lr, fused=fused or None)


def sgd(groups: list[dict[str, Any]], lr: float, device: torch.device) -> torch.optim.SGD:
    """SGD with momentum 0.9 (``train.optimizer: sgd``), the optimizer of DP-SGD's papers."""
    return torch.optim.SGD(groups, lr=lr, momentum=0.9)


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


def train(
    model: nn.Module,
    strategy: Strategy,
    inputs: Inputs,
    train_data: Examples,
    validation: Examples,
    *,
    task: str,
    label_names: list[str] | None,
    cfg: TrainConfig,
    seed: int,
    work_dir: Path,
    resume: bool = False,
    show_progress: bool = True,
    objective: Objective | None = None,
    on_evaluate: Callable[[int, dict[str, Any]], None] | None = None,
    evaluator: Evaluator | None = None,
    batcher: Batcher | None = None,
) -> TrainResult:
    """Train ``model`` in place; on return it holds the best (or last) weights.

    ``objective`` replaces the supervised loss (distillation and generation use this);
    ``evaluator`` replaces the validation metrics (generation: the loss on the answers);
    ``on_evaluate`` sees every validation result (the hyperparameter search prunes from it);
    ``batcher`` replaces padding rows into a batch (pretraining masks tokens there).
    """
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    dist = Distributed() if world_size() > 1 else None
    if dist is not None and cfg.privacy.dp is not None:
        raise ConfigError("train.privacy.dp runs in one process: Poisson sampling and the accountant are per run")
    is_main = dist is None or dist.is_main
    device = dist.device if dist else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    dp = DPSGD(cfg.privacy.dp, len(train_data), cfg.batch_size, cfg.epochs, cfg.max_steps) if cfg.privacy.dp else None
    # Per-example gradients are computed in fp32.
    dtype = None if dp else resolve_precision(cfg.precision, device)
    metric_name, mode = tracked_metric(cfg, task)

    enc_train, enc_val = inputs(train_data), inputs(validation)
    lengths = lengths_of(enc_train)
    pad_id = inputs.pad_id
    if batcher is None:
        def batcher(part: np.ndarray, epoch: int, step: int) -> tuple[dict[str, torch.Tensor], Any]:
            return collate(enc_train, part, pad_id), part
    if objective is None:
        weights = (_class_weights(train_data.labels, len(label_names or []))
                   if cfg.class_weights and task_of(task).scores_classes else None)
        objective = Supervised(train_data.labels, task, weights,
                               focal_gamma=cfg.focal_gamma if cfg.loss == "focal" else None,
                               row_weights=train_data.weights)

    # Oversampling draws the epoch's rows from the labels; regression and soft targets do not.
    sample_labels = train_data.labels if cfg.oversample and task_of(task).scores_classes else None
    per_epoch = (dp.steps_per_epoch if dp else
                 -(-len(epoch_batches(lengths, cfg.batch_size, seed, 0, cfg.group_by_length, sample_labels))
                   // cfg.grad_accum_steps))
    total_steps = per_epoch * cfg.epochs if cfg.max_steps is None else min(cfg.max_steps, per_epoch * cfg.epochs)
    warmup = cfg.warmup_steps if cfg.warmup_steps is not None else int(cfg.warmup_fraction * total_steps)
    groups = strategy.param_groups(model, cfg.lr, cfg.weight_decay)
    if cfg.head_lr is not None:
        groups = with_head_lr(groups, model, cfg.head_lr)
    optimizer = adamw(groups, cfg.lr, device) if cfg.optimizer == "adamw" else sgd(groups, cfg.lr, device)
    scheduler = strategy.schedule(optimizer, total_steps, warmup)
    # DP-SGD trains through a wrapper with per-example gradients and a noisy optimizer; the
    # plain ``model`` and ``optimizer`` stay what is checkpointed and returned.
    forward, stepper = dp.wrap(model, optimizer) if dp else (model, optimizer)
    if dist is not None:
        forward, stepper = dist.prepare(model, optimizer)
    trainable, total = count_parameters(model)

    state = LoopState()
    resumed_from: int | None = None
    ckpt_path, best_path = work_dir / CHECKPOINT, work_dir / BEST
    if resume and ckpt_path.exists():
        saved = checkpoint.load(ckpt_path)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        state = LoopState(**saved["state"])
        torch.set_rng_state(saved["rng"])
        if dp:
            dp.restore(state.dp_steps)
        resumed_from = state.global_step
        if is_main:
            _truncate_history(work_dir / HISTORY, state.global_step)
            _truncate_history(work_dir / STEPS, state.global_step)
    else:
        torch.manual_seed(seed)
        if is_main:
            (work_dir / HISTORY).unlink(missing_ok=True)
            (work_dir / STEPS).unlink(missing_ok=True)

    def save_checkpoint() -> None:
        if not is_main:
            return
        checkpoint.atomic_save({
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "state": asdict(state), "rng": torch.get_rng_state(),
        }, ckpt_path)

    def evaluate_now() -> bool:
        """Evaluate, log, track the best weights; True when early stopping says stop."""
        eval_start = time.perf_counter()
        if evaluator is not None:
            metrics = evaluator(model, enc_val, dtype)
        else:
            outputs = model_outputs(model, enc_val, cfg.eval_batch_size, task, pad_id, dtype)
            metrics = _eval_metrics(outputs, validation.labels, task, label_names)
        model.train()
        value = metrics[metric_name]
        improved = state.best_metric is None or (value > state.best_metric if mode == "max" else value < state.best_metric)
        if improved:
            state.best_metric, state.best_step, state.bad_evals = float(value), state.global_step, 0
            if cfg.early_stopping and is_main:
                checkpoint.atomic_save(model.state_dict(), best_path)
        else:
            state.bad_evals += 1
        record = {
            "step": state.global_step, "epoch": round(state.global_step / per_epoch, 4),
            "train_loss": state.loss_sum / max(state.loss_count, 1),
            "lr": scheduler.get_last_lr()[0], "validation": metrics,
        }
        state.loss_sum, state.loss_count = 0.0, 0
        if is_main:
            _append(work_dir / HISTORY, record)
        state.eval_seconds += time.perf_counter() - eval_start
        progress.evaluated(state.global_step, metric_name, float(value), improved)
        if on_evaluate is not None:
            on_evaluate(state.global_step, metrics)
        return bool(cfg.early_stopping and state.bad_evals >= cfg.early_stopping.patience)

    model.train()
    progress = TrainProgress(total_steps, state.global_step, enabled=show_progress and is_main)
    # Seconds are banked into the state at each checkpoint, so a resumed run reports the
    # time of all its processes together.
    start = banked_at = time.perf_counter()
    eval_at_start = state.eval_seconds
    samples_this_run = 0
    stop = StopRequest()
    with progress, stop:
        while state.epoch < cfg.epochs and state.global_step < total_steps and not state.stopped_early:
            batches = (dp.batches(seed, state.epoch) if dp else
                       epoch_batches(lengths, cfg.batch_size, seed, state.epoch, cfg.group_by_length, sample_labels))
            # One optimizer step per group of grad_accum_steps micro-batches.
            steps = [batches[i:i + cfg.grad_accum_steps] for i in range(0, len(batches), cfg.grad_accum_steps)]
            for group in steps[state.batch_in_epoch:]:
                strategy.on_step(model, state.global_step, total_steps)
                rows = sum(len(index) for index in group)
                loss_value = 0.0
                for index in group:
                    # Several processes: this one trains on its share of the global batch.
                    part, share = dist.share(index) if dist else (index, 1.0)
                    batch, key = batcher(part, state.epoch, state.global_step)
                    batch = {k: v.to(device) for k, v in batch.items()}
                    with autocast(device, dtype):
                        logits = forward(**batch).logits
                    # Weighted by rows, so the step's gradient is that of one batch of all its rows.
                    loss = objective(logits, key) * (len(index) / rows) * share
                    loss.backward()
                    loss_value += loss.item()
                if cfg.max_grad_norm and dp is None:  # DP-SGD clips each example's gradient instead
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                stepper.step()
                scheduler.step()
                stepper.zero_grad(set_to_none=True)
                if dp:
                    dp.step()
                    state.dp_steps += 1
                state.global_step += 1
                state.batch_in_epoch += 1
                state.loss_sum += loss_value
                state.loss_count += 1
                state.samples_seen += rows
                samples_this_run += rows
                elapsed = time.perf_counter() - start
                speed = samples_this_run / max(elapsed, 1e-9)
                progress.step(state.global_step, loss_value, state.epoch + 1, speed)
                if is_main:
                    _append(work_dir / STEPS, {"step": state.global_step, "total_steps": total_steps,
                                               "epoch": state.epoch + 1, "loss": loss_value,
                                               "lr": scheduler.get_last_lr()[0], "samples_per_s": round(speed, 2)})
                end_of_epoch = state.batch_in_epoch == len(steps)
                if end_of_epoch:
                    state.epoch, state.batch_in_epoch = state.epoch + 1, 0
                due = (state.global_step % cfg.eval_every == 0) if cfg.eval_every else end_of_epoch
                if due or state.global_step == total_steps:
                    state.stopped_early = evaluate_now()
                if stop.requested or (cfg.checkpoint_every and state.global_step % cfg.checkpoint_every == 0):
                    now = time.perf_counter()
                    state.train_seconds, banked_at = state.train_seconds + now - banked_at, now
                    save_checkpoint()
                if stop.requested:
                    if dist is not None:
                        dist.close()
                    raise TrainingStopped(f"training stopped at step {state.global_step} of {total_steps}; "
                                          f"the checkpoint in {work_dir} resumes it (fintune train CONFIG --resume)")
                if state.stopped_early or state.global_step >= total_steps:
                    break
    end = time.perf_counter()
    in_sync = None
    if dist is not None:
        in_sync = dist.in_sync(model)
        dist.barrier()  # the main process has written best.pt
    if dp:
        dp.close(forward)
    state.train_seconds += end - banked_at
    # Throughput counts training steps only: evaluation time is reported on its own.
    step_seconds = end - start - (state.eval_seconds - eval_at_start)
    if cfg.early_stopping and best_path.exists():
        model.load_state_dict(checkpoint.load(best_path))
    if dist is not None:
        # The DDP wrapper and optimizer go first: gloo can abort at exit when the group ends under them.
        del forward, stepper, optimizer, scheduler
        dist.close()
    return TrainResult(
        metric=metric_name, train_rows=len(train_data), best_metric=state.best_metric, best_step=state.best_step,
        global_step=state.global_step, stopped_early=state.stopped_early,
        train_seconds=round(state.train_seconds - state.eval_seconds, 3), eval_seconds=round(state.eval_seconds, 3),
        train_samples_per_s=round(samples_this_run / max(step_seconds, 1e-9), 3),
        trainable_params=trainable, total_params=total,
        precision="bf16" if dtype is torch.bfloat16 else "fp32", resumed_from_step=resumed_from,
        privacy=dp.report(state.dp_steps) if dp else None, history=read_history(work_dir / HISTORY),
        processes=dist.world if dist else 1, ranks_in_sync=in_sync,
    )


def read_history(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines log of a run (evaluations, steps), in order. A line cut short
    by a killed process, or still being written while the board reads, is not a record: it is
    skipped, and a resumed run rewrites the file."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def _append(path: Path, record: dict[str, Any]) -> None:
    # O_NOFOLLOW: a link planted in the run folder is refused, never written through.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def _truncate_history(path: Path, step: int) -> None:
    # Steps after the checkpoint are trained again on resume; drop their old records.
    kept = [r for r in read_history(path) if r["step"] <= step]
    write_text(path, "".join(json.dumps(r) + "\n" for r in kept), "training history")
