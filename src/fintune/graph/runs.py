"""The runs a graph is built with: a run folder loaded, or a model passed in, and its task checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fintune.errors import FintuneError


def load_run(run: Any, option: str, tasks: tuple[str, ...]) -> Any:
    """A run folder loaded with FintuneModel, or a model object passed through; its task checked.

    Args:
        run: a run folder, or a loaded model (anything with ``task``).
        option: the CLI option that named the run, for messages ("--ner").
        tasks: the tasks the run may have.

    Raises:
        FintuneError: no such folder, or a run of another task.
    """
    if isinstance(run, (str, Path)):
        if not Path(run).exists():
            raise FintuneError(f"{option} run folder not found: {Path(run).resolve()}")
        from fintune.predictors import FintuneModel  # imports torch: only when a run is given

        model = FintuneModel.load(run)
    else:
        model = run
    if model.task not in tasks:
        wanted = {("token_classification",): "a token_classification (NER)",
                  ("relation",): "a relation"}.get(tasks, "a classification (positive/negative-like labels) or regression")
        raise FintuneError(f"{option} {describe_run(run)} is a {model.task} run; it must be {wanted} run")
    return model


def describe_run(run: Any) -> str | None:
    """How graph.json names a run: its folder, or the class of a model passed in."""
    if run is None:
        return None
    return str(run) if isinstance(run, (str, Path)) else type(run).__name__
