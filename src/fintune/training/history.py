"""What a run's training leaves besides weights: the loop's resumable state, its result, and
the JSON-lines logs of evaluations and steps."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fintune.files import write_text

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
    train_tokens_per_s: float | None = None  # real (non-pad) tokens of the rows trained on, per second
    packed: bool = False  # trained on packed batches (train.packing)
    privacy: dict[str, Any] | None = None  # DP-SGD: budget, epsilon spent, noise
    processes: int = 1
    ranks_in_sync: bool | None = None  # several processes: identical weights on every rank at the end
    history: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)  # a recipe's own facts (C, members), summarized last

    @classmethod
    def fitted(cls, metric: str, rows: int, seconds: float, params: int, precision: str, *,
               best_metric: float | None = None, best_step: int = 0, global_step: int = 0,
               stopped_early: bool = False, samples: int | None = None, **details: Any) -> TrainResult:
        """The result of a model fitted outside the loop (LightGBM, a linear model, an ensemble's
        weights): ``samples`` rows seen in ``seconds`` (``rows`` when not given)."""
        return cls(metric=metric, train_rows=rows, best_metric=best_metric, best_step=best_step,
                   global_step=global_step, stopped_early=stopped_early, train_seconds=round(seconds, 3),
                   eval_seconds=0.0, train_samples_per_s=round((samples or rows) / max(seconds, 1e-9), 3),
                   trainable_params=params, total_params=params, precision=precision, details=details)

    def summary(self) -> dict[str, Any]:
        """What metrics.json records under ``training`` (the history stays in its own file)."""
        record = {k: v for k, v in asdict(self).items() if k not in ("history", "details")}
        return {**record, **self.details}


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


def append_record(path: Path, record: dict[str, Any]) -> None:
    # O_NOFOLLOW: a link planted in the run folder is refused, never written through.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def truncate_history(path: Path, step: int) -> None:
    # Steps after the checkpoint are trained again on resume; drop their old records.
    kept = [r for r in read_history(path) if r["step"] <= step]
    write_text(path, "".join(json.dumps(r) + "\n" for r in kept), "training history")
