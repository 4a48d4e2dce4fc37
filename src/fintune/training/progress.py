"""Training progress: a live bar in a terminal, plain lines in a log.

`fintune train cfg.yaml > train.log 2>&1` gets no bar (nothing redraws in a file); it gets
one line every :data:`EVERY_SECONDS` seconds or 5% of the steps, whichever comes first, and
one line per evaluation, so `tail -f train.log` shows a run that is alive.
"""

from __future__ import annotations

import time
from types import TracebackType

from rich.progress import (
    BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
)

from fintune.console import console, duration

EVERY_SECONDS = 30.0


class TrainProgress:
    """The bar (terminal) or the log lines (anything else) of one training loop."""

    def __init__(self, total: int, done: int, enabled: bool) -> None:
        self.total, self.enabled = total, enabled
        self.plain = enabled and not console.is_terminal
        self.started = self.last_line = time.perf_counter()
        self.first, self.last_step = done, done
        self.bar = Progress(
            TextColumn("[bold]train[/] epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[speed]:.1f} samples/s"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console,
            disable=not enabled or self.plain,
        )
        self.task = self.bar.add_task("train", total=total, completed=done, epoch=1, loss=0.0, speed=0.0)

    def __enter__(self) -> TrainProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.bar.__exit__(kind, exc, tb)

    def step(self, step: int, loss: float, epoch: int, speed: float) -> None:
        """One optimizer step done."""
        self.bar.update(self.task, completed=step, loss=loss, epoch=epoch, speed=speed)
        if not self.plain:
            return
        now = time.perf_counter()
        every = max(1, self.total // 20)
        if step == self.total or now - self.last_line >= EVERY_SECONDS or step - self.last_step >= every:
            elapsed = now - self.started
            rate = (step - self.first) / max(elapsed, 1e-9)
            eta = (self.total - step) / rate if rate > 0 else 0.0
            console.print(f"train step {step}/{self.total} ({100 * step / max(self.total, 1):.0f}%) epoch {epoch} "
                          f"loss {loss:.4f} {speed:.1f} samples/s elapsed {duration(elapsed)} eta {duration(eta)}",
                          soft_wrap=True, highlight=False)
            self.last_line, self.last_step = now, step

    def evaluated(self, step: int, metric: str, value: float, best: bool) -> None:
        """One validation pass done (a line in a log; the bar carries on in a terminal)."""
        if self.plain:
            console.print(f"validation at step {step}: {metric} {value:.4f}{' (best so far)' if best else ''}",
                          soft_wrap=True, highlight=False)
