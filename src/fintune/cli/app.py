"""The `fintune` command line's app, shared option types and error handling.

Each command is a thin call into :mod:`fintune.api` (or a workflow, an engine); the commands
live in one module per group, imported by :mod:`fintune.cli`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any

import typer

from fintune.errors import FintuneError
from fintune.files import describe_os_error

app = typer.Typer(help="Fine-tune language models for finance.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
data_app = typer.Typer(help="Inspect data before training.", no_args_is_help=True)
app.add_typer(data_app, name="data")
graph_app = typer.Typer(help="A knowledge graph of the entities a corpus mentions together.", no_args_is_help=True)
app.add_typer(graph_app, name="graph")
models_app = typer.Typer(help="Vetted backbones that work offline: list, fetch, verify.", no_args_is_help=True)
app.add_typer(models_app, name="models")

Overrides = Annotated[list[str] | None, typer.Argument(help="config overrides, e.g. train.lr=3e-5")]
Groups = Annotated[str | None, typer.Option(help="group columns for fairness: COL[,COL], age:25,35,50 bins")]
NoProgress = Annotated[bool, typer.Option("--no-progress", help="no progress bars")]


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"fintune {version('fintune')}")
        raise typer.Exit()


@app.callback(help="Fine-tune language models for finance.")
def _quiet_libraries(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                           help="print fintune's version and exit")] = False) -> None:
    # Keep the terminal for fintune's own progress: transformers' load report lists the
    # freshly initialized head on every run, which is expected, not news.
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Print a FintuneError as one line and exit 2: no traceback for mistakes a user can fix."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except FintuneError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:  # a path that is a file, read-only, missing: the user's to fix
            typer.secho(f"error: {describe_os_error(exc)}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
        except UnicodeError as exc:
            typer.secho(f"error: text that is not valid UTF-8 ({exc.reason}); fix or drop it in the input",
                        fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
    return wrapper
