"""The `fintune` command line: one module per command group, all on one typer app.

Each command is a thin call into :mod:`fintune.api`, a workflow or an engine.
"""

from __future__ import annotations

import sys

from fintune.cli import catalogue, evaluation, serving, training  # noqa: F401  (registers the commands)
from fintune.cli.app import app, user_errors


def main() -> None:  # pragma: no cover - entry point for `python -m fintune`
    sys.exit(app())


__all__ = ["app", "main", "user_errors"]
