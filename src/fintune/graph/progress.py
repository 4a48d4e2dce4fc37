"""A progress bar for model work, advanced by the models' ``on_batch`` callbacks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

OnBatch = Callable[[int], None]
"""Called by a model after each batch with the number of inputs that batch held."""


@contextmanager
def progress_bar(description: str, total: int, console: Console | None = None,
                 show: bool = True) -> Iterator[OnBatch]:
    """A transient bar of ``total`` inputs; yields the ``on_batch`` callback that advances it.

    Transient, so that once the work is done only the summary stays on the terminal; on a
    console that is not a terminal (a file, a pipe, a test's CliRunner) rich draws nothing.
    ``show=False`` gives a callback that does nothing.
    """
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console or Console(stderr=True), transient=True,
                  disable=not show) as progress:
        task = progress.add_task(description, total=total)
        yield lambda done: progress.advance(task, done)
