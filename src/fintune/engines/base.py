"""Where work runs: each engine is a class registered by name that declares what it runs.

``fintune train --engine NAME`` and ``fintune predict --engine NAME`` ask the registry for the
engine and hand it one request; a new engine is a module here with a registered class and a
row in tests/engines/test_engines_registry.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from fintune.errors import FintuneError

Work = Literal["train", "pretrain", "predict"]


@dataclass(frozen=True)
class TrainRequest:
    """One ``fintune train`` (or ``pretrain``): the config, its overrides and the run options."""

    command: Literal["train", "pretrain"]
    config: Path
    overrides: list[str]
    resume: bool = False
    overwrite: bool = False
    force: bool = False
    show_progress: bool = True
    nproc: int = 1  # processes on this machine (torchrun)
    workers: int = 2  # a cluster engine's workers
    address: str | None = None  # a running cluster

    def argv(self) -> list[str]:
        """The same request as ``fintune`` arguments (what a launcher starts in each process)."""
        return ([self.command, str(self.config), *self.overrides] + ["--resume"] * self.resume
                + ["--overwrite"] * self.overwrite + ["--force"] * self.force
                + ["--no-progress"] * (not self.show_progress))


@dataclass(frozen=True)
class PredictRequest:
    """One ``fintune predict``: a run scores a file."""

    run: Path
    input: Path
    output: Path
    batch_size: int = 64
    show_progress: bool = True
    truncated_column: bool = False
    workers: int = 2
    address: str | None = None


class Engine:
    """An engine: what it runs (``works``) and how; ``hint`` says where it runs otherwise."""

    name: ClassVar[str]
    summary: ClassVar[str]  # one line for --help and the docs
    works: ClassVar[frozenset[str]] = frozenset()
    hint: ClassVar[str] = ""  # for work it does not run from the command line

    def train(self, request: TrainRequest) -> int:
        """Run the training request; the exit code of processes it started (0: done)."""
        raise NotImplementedError

    def predict(self, request: PredictRequest) -> None:
        """Score the request's file into its output."""
        raise NotImplementedError


ENGINES: dict[str, type[Engine]] = {}


def register_engine(cls: type[Engine]) -> type[Engine]:
    """Class decorator: make ``--engine cls.name`` available."""
    ENGINES[cls.name] = cls
    return cls


def engine_for(name: str, work: Work) -> Engine:
    """The engine ``name`` for ``work``; an error that names the engines that do it."""
    able = [n for n, cls in ENGINES.items() if work in cls.works]
    cls = ENGINES.get(name)
    if cls is None:
        raise FintuneError(f"--engine {name}: unknown; {work} runs on {' or '.join(able)}")
    if work not in cls.works:
        hint = f" ({cls.hint})" if cls.hint else ""
        raise FintuneError(f"--engine {name} does not {work}{hint}; use {' or '.join(able)}")
    return cls()


def engine_names(work: Work) -> list[str]:
    """The engines that run ``work``, in registration order."""
    return [n for n, cls in ENGINES.items() if work in cls.works]
